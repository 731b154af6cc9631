//! A MeasureReport against the Measure it names, as HL7's validator checks it
//! (MeasureValidator, R4):
//!
//! - the measure resolves (contained `#id` or a loaded definition; a warning when it does not);
//! - groups: a single group of a single-group Measure may be anonymous (a code, if both have
//!   one, must match); otherwise each group has a code matching one of the Measure's, once,
//!   and every Measure group is reported unless the report is a data collection;
//! - populations the same way within a group (the Measure's `measure-observation` populations
//!   may be left out); a report that is not a subject list lists no subjects;
//! - `measureScore`: none in a data collection or for a cohort measure; required for
//!   proportion, ratio and continuous-variable measures, with a value, and for a proportion
//!   unitless and between 0 and 1;
//! - stratifiers by code (or by text when neither has codings), once each, and every Measure
//!   stratifier reported.
//!
//! Findings are located as Java locates them (a missing group at the report, a missing
//! population or stratifier at its group) and name codes of the Measure, never report values.

use serde_json::{Map, Value};

use super::{Finding, Severity, Validator};

fn arr<'a>(m: &'a Value, k: &str) -> &'a [Value] {
    m.get(k).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn error(out: &mut Vec<Finding>, expression: String, code: &'static str, text: String) {
    out.push(Finding { severity: Severity::Error, code, text, expression });
}

/// `system|code` pairs of a CodeableConcept that has both.
fn codings(cc: &Value) -> Vec<(&str, &str)> {
    arr(cc, "coding").iter().filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?))).collect()
}

fn shares_coding(a: &Value, b: &Value) -> bool {
    let bs = codings(b);
    codings(a).iter().any(|c| bs.contains(c))
}

/// How a Measure's code is shown in a message: its first code, else its text.
fn display(cc: &Value) -> String {
    arr(cc, "coding").first().and_then(|c| c["code"].as_str()).or_else(|| cc["text"].as_str()).unwrap_or_default().to_owned()
}

struct Report<'a> {
    scoring: Option<&'a str>,
    report_type: Option<&'a str>,
    out: &'a mut Vec<Finding>,
}

/// The checks of a MeasureReport at `path`.
pub(super) fn check(v: &Validator, mr: &Map<String, Value>, path: &str, out: &mut Vec<Finding>) {
    let Some(url) = mr.get("measure").and_then(Value::as_str) else { return };
    let Some(m) = v.resolve_from(mr, url).filter(|m| m["resourceType"] == "Measure") else {
        out.push(Finding {
            severity: Severity::Warning,
            code: "required",
            text: format!("The Measure '{url}' could not be resolved, so no validation can be performed against the Measure"),
            expression: format!("{path}.measure"),
        });
        return;
    };
    let mgroups = arr(&m, "group");
    if mgroups.is_empty() {
        return;
    }
    let mut r = Report { scoring: m["scoring"]["coding"][0]["code"].as_str(), report_type: mr.get("type").and_then(Value::as_str), out };
    let groups = mr.get("group").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if groups.len() == 1 && mgroups.len() == 1 {
        let gp = format!("{path}.group[0]");
        let (g, mg) = (&groups[0], &mgroups[0]);
        if mg.get("code").is_some() && g.get("code").is_some() {
            if codings(&g["code"]).is_empty() {
                error(
                    r.out,
                    gp.clone(),
                    "business-rule",
                    "None of the codes provided are usable for comparison - need both system and code on at least one code".into(),
                );
            } else if !shares_coding(&g["code"], &mg["code"]) {
                error(
                    r.out,
                    gp.clone(),
                    "business-rule",
                    format!("The code provided does not match the code specified in the measure ({})", display(&mg["code"])),
                );
            }
        }
        r.group(mg, g, &gp);
        return;
    }
    let mut matched: Vec<usize> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        let gp = format!("{path}.group[{i}]");
        if g.get("code").is_none() {
            error(
                r.out,
                gp,
                "business-rule",
                "Group should have a code that matches the group definition in the measure".into(),
            );
            continue;
        }
        match mgroups.iter().position(|mg| shares_coding(&g["code"], &mg["code"])) {
            None => error(r.out, gp, "business-rule", "The code for this group has no match in the measure definition".into()),
            Some(k) if matched.contains(&k) => {
                error(r.out, gp, "business-rule", "The code for this group is duplicated with another group".into())
            }
            Some(k) => {
                matched.push(k);
                r.group(&mgroups[k], g, &gp);
            }
        }
    }
    if r.report_type != Some("data-collection") {
        for (k, mg) in mgroups.iter().enumerate() {
            if !matched.contains(&k) {
                error(
                    r.out,
                    path.to_owned(),
                    "business-rule",
                    format!("The MeasureReport does not include a group for the group with code '{}'", display(&mg["code"])),
                );
            }
        }
    }
}

impl Report<'_> {
    fn group(&mut self, mg: &Value, g: &Value, gp: &str) {
        self.populations(mg, g, gp);
        self.score(g, gp);
        self.stratifiers(mg, g, gp);
    }

    fn populations(&mut self, mg: &Value, g: &Value, gp: &str) {
        let mpops = arr(mg, "population");
        let mut matched: Vec<usize> = Vec::new();
        for (j, p) in arr(g, "population").iter().enumerate() {
            let pp = format!("{gp}.population[{j}]");
            if p.get("code").is_none() {
                error(
                    self.out,
                    pp,
                    "business-rule",
                    "Group should have a code that matches the group population definition in the measure".into(),
                );
                continue;
            }
            match mpops.iter().position(|mp| shares_coding(&p["code"], &mp["code"])) {
                None => error(
                    self.out,
                    pp,
                    "business-rule",
                    "The code for this group population has no match in the measure definition".into(),
                ),
                Some(k) if matched.contains(&k) => error(
                    self.out,
                    pp,
                    "business-rule",
                    "The code for this group population is duplicated with another group".into(),
                ),
                Some(k) => {
                    matched.push(k);
                    if self.report_type != Some("subject-list") && p.get("subjectResults").is_some() {
                        error(
                            self.out,
                            pp,
                            "business-rule",
                            "Reports where type is not 'subject-list' don't have subjects listed".into(),
                        );
                    }
                }
            }
        }
        for (k, mp) in mpops.iter().enumerate() {
            let observation =
                codings(&mp["code"]).contains(&("http://terminology.hl7.org/CodeSystem/measure-population", "measure-observation"));
            if !matched.contains(&k) && !observation {
                error(
                    self.out,
                    gp.to_owned(),
                    "business-rule",
                    format!(
                        "The MeasureReport does not include a population for the population with code '{}'",
                        display(&mp["code"])
                    ),
                );
            }
        }
    }

    fn score(&mut self, g: &Value, gp: &str) {
        let ms = g.get("measureScore");
        let msp = format!("{gp}.measureScore");
        if self.report_type == Some("data-collection") {
            if ms.is_some() {
                error(
                    self.out,
                    msp,
                    "business-rule",
                    "No measureScore when the type of the report is 'data-collection'".into(),
                );
            }
            return;
        }
        let Some(scoring) = self.scoring else { return };
        match scoring {
            "cohort" if ms.is_some() => {
                error(self.out, msp, "business-rule", "No measureScore when the scoring of the message is 'cohort'".into());
            }
            "proportion" | "ratio" | "continuous-variable" => {
                let Some(ms) = ms else {
                    error(
                        self.out,
                        gp.to_owned(),
                        "required",
                        format!("A measureScore is required when the Measure.scoring={scoring}"),
                    );
                    return;
                };
                let Some(value) = ms.get("value") else {
                    error(self.out, msp, "required", format!("A value is required when the Measure.scoring = {scoring}"));
                    return;
                };
                if scoring == "proportion" {
                    for unit in ["unit", "system", "code"] {
                        if ms.get(unit).is_some() {
                            error(
                                self.out,
                                format!("{msp}.{unit}"),
                                "business-rule",
                                "A measureScore for this Measure Scoring (proportion) should not have units".into(),
                            );
                        }
                    }
                    if value.as_f64().is_some_and(|x| !(0.0..=1.0).contains(&x)) {
                        error(
                            self.out,
                            format!("{msp}.value"),
                            "required",
                            "The value is invalid - it must be between 0 and 1".into(),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn stratifiers(&mut self, mg: &Value, g: &Value, gp: &str) {
        let mstrats = arr(mg, "stratifier");
        let mut matched: Vec<usize> = Vec::new();
        for (j, s) in arr(g, "stratifier").iter().enumerate() {
            let sp = format!("{gp}.stratifier[{j}]");
            // R4: a report stratifier's `code` repeats; Java reads the first.
            let Some(cc) = s["code"].as_array().and_then(|c| c.first()).or_else(|| s.get("code").filter(|c| c.is_object())) else {
                error(
                    self.out,
                    sp,
                    "business-rule",
                    "Group should have a code that matches the group stratifier definition in the measure".into(),
                );
                continue;
            };
            let found = mstrats.iter().position(|ms| {
                let mc = &ms["code"];
                shares_coding(cc, mc)
                    || (codings(cc).is_empty()
                        && codings(mc).is_empty()
                        && cc["text"].as_str().is_some_and(|t| mc["text"].as_str() == Some(t)))
            });
            match found {
                None => error(
                    self.out,
                    sp,
                    "business-rule",
                    "The code for this group stratifier has no match in the measure definition".into(),
                ),
                Some(k) if matched.contains(&k) => error(
                    self.out,
                    sp,
                    "business-rule",
                    "The code for this group stratifier is duplicated with another group".into(),
                ),
                Some(k) => matched.push(k),
            }
        }
        for (k, ms) in mstrats.iter().enumerate() {
            if !matched.contains(&k) {
                error(
                    self.out,
                    gp.to_owned(),
                    "business-rule",
                    format!(
                        "The MeasureReport does not include a stratifier for the stratifier with code '{}' (id = '{}')",
                        display(&ms["code"]),
                        ms["id"].as_str().unwrap_or_default()
                    ),
                );
            }
        }
    }
}
