//! The operator console (`/console`): sessions, scopes, cross-site refusals, the pages' figures
//! against the API, replaying dead letters, no patient data on any page; in process on both
//! stores, with the real binary, and in a real browser (Debian's Chromium driven over WebDriver).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::relay::{Fake, record, wait_state};
use crate::support::{Gateway, Serve, fhir_destination, postgres_url, sqlite_url};

const READER_KEY: &str = "mhg_test-reader-key-not-a-secret-0123456789";

fn guard() -> Arc<mhg::http::Guard> {
    let cfg = mhg::auth::AuthConfig {
        keys_file: std::path::PathBuf::from("/nonexistent/keys.json"),
        clients: vec![test_client("test-admin", TEST_ADMIN_KEY, &["admin"]), test_client("reader", READER_KEY, &["submissions:read"])],
        ..Default::default()
    };
    let auth = mhg::auth::Auth::from_config(&cfg).expect("auth");
    Arc::new(mhg::http::Guard::new(Arc::new(auth), 0, 0, 0, Duration::ZERO))
}

/// A record whose every name and free-text field holds a marker no page may show.
fn marked(record_id: &str) -> Value {
    let mut r = record(record_id, "ZQXPID-0001", 1);
    r["person"]["names"] = json!([{"use": "official", "family": "Zqxfamilymarker", "given": ["Zqxgivenmarker", "Zqxmiddlemarker"]}]);
    r["person"]["birthDate"] = json!("1903-04-05");
    r["assessment"]["site"]["name"] = json!("Zqxsitemarker Centre");
    r
}
const MARKERS: [&str; 6] = ["zqxfamilymarker", "zqxgivenmarker", "zqxmiddlemarker", "zqxsitemarker", "zqxpid", "1903-04-05"];

/// A form body, `application/x-www-form-urlencoded`.
fn form(pairs: &[(&str, &str)]) -> String {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        f.append_pair(k, v);
    }
    f.finish()
}

trait Form {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl Form for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded").body(form(pairs))
    }
}

/// A browser-less console user: no redirects followed, the session cookie kept by hand.
struct Console {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Console {
    async fn sign_in(base: &str, key: &str) -> Console {
        mhg::relay::install_tls();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let r = client.post(format!("{base}/console/sign-in")).form_body(&[("key", key)]).send().await.unwrap();
        assert_eq!(r.status(), 303, "signed in");
        let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
            assert!(set.contains(attr), "{attr} in {set}");
        }
        assert!(!set.contains("Secure"), "not Secure over plain HTTP: {set}");
        assert!(!set.contains(key), "the cookie does not carry the key");
        let cookie = set.split(';').next().unwrap().to_owned();
        Console { client, base: base.to_owned(), cookie }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.unwrap();
        let s = r.status().as_u16();
        if s == 200 {
            let h = r.headers();
            assert_eq!(h["content-type"], "text/html; charset=utf-8");
            assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
            assert!(!h["content-security-policy"].to_str().unwrap().contains("unsafe-inline"));
            assert_eq!(h["x-content-type-options"], "nosniff");
        }
        (s, r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(format!("{}{path}", self.base)).header("cookie", &self.cookie).form_body(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send().await.unwrap()
    }

    /// The anti-forgery token of this session, read from a page's form.
    async fn csrf(&self) -> String {
        let (_, page) = self.get("/console").await;
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        page[at..at + 64].to_owned()
    }
}

fn no_markers(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for m in MARKERS {
        assert!(!lower.contains(m), "{what} shows patient data ({m})");
    }
}

/// Sign-in, scopes, cross-site refusal, figures against the API, the list and its filters, a
/// dead letter replayed from the console and delivered, and no patient data on any page.
async fn the_console_end_to_end(store_url: String) {
    let (fake, fake_url) = Fake::start(&[422]).await;
    let gw = Gateway::builder(&store_url).destinations(vec![fhir_destination("moh", &fake_url)]).guard(guard()).start().await;
    let api = http();
    let base = gw.base.clone();

    // No page without a session; a wrong key is refused.
    mhg::relay::install_tls();
    let bare = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for p in ["/console", "/console/submissions", "/console/dead-letters", "/console/callers", "/console/submissions/x"] {
        let r = bare.get(format!("{base}{p}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{p}");
        assert_eq!(r.headers()["location"], "/console/sign-in");
    }
    let r = bare.post(format!("{base}/console/sign-in")).form_body(&[("key", "mhg_wrong")]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = bare.get(format!("{base}/console/sign-in")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("name=\"key\""));

    // A dead letter (the fake refuses once with 422), and a record delivered after it.
    let (s, first) = crate::relay::post_records(&api, &base, marked("CON-1").to_string()).await;
    assert_eq!(s, 202, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    wait_state(&api, &base, &id, "dead-letter", 20).await;
    let (_, second) = crate::relay::post_records(&api, &base, marked("CON-2").to_string()).await;
    let id2 = second["id"].as_str().unwrap().to_owned();
    wait_state(&api, &base, &id2, "delivered", 20).await;

    let admin = Console::sign_in(&base, TEST_ADMIN_KEY).await;
    let reader = Console::sign_in(&base, READER_KEY).await;

    // The overview's counts are the API's.
    let (s, overview) = admin.get("/console").await;
    assert_eq!(s, 200);
    for state in ["dead-letter", "delivered"] {
        let listed: Value = api.get(format!("{base}/submissions?state={state}")).send().await.unwrap().json().await.unwrap();
        let n = listed["submissions"].as_array().unwrap().len();
        assert!(overview.contains(&format!("data-state=\"{state}\">{n}</span>")), "{state}: {n} in {overview}");
    }
    assert!(overview.contains("<svg"), "the chart is drawn on the server");
    assert!(overview.contains("data-depth=\"moh\">0<"), "moh's queue is empty");

    // The list, filtered and searched; a submission's page with the destination's outcome.
    let (_, list) = admin.get("/console/submissions?state=dead-letter").await;
    assert!(list.contains(&id) && !list.contains(&id2));
    let (_, list) = admin.get("/console/submissions?state=delivered&destination=moh").await;
    assert!(list.contains(&id2) && !list.contains(&format!(">{id}<")));
    let (_, found) = admin.get("/console/submissions?q=CON-2").await;
    assert!(found.contains(&id2) && !found.contains(&format!(">{id}<")), "search by record id");
    let (_, found) = admin.get(&format!("/console/submissions?q={id}")).await;
    assert!(found.contains(&id), "search by submission id");
    let (s, _) = admin.get("/console/submissions?from=2026-13-01").await;
    assert_eq!(s, 400);
    let (_, page) = admin.get(&format!("/console/submissions/{id}")).await;
    assert!(
        page.contains("rejected by the fake for the test") && page.contains("<code>processing</code>"),
        "{page}"
    );
    assert!(page.contains("Patient") && page.contains("Profiles claimed"), "the Bundle's shape");
    let (_, dead) = admin.get("/console/dead-letters").await;
    assert!(dead.contains(&id) && dead.contains("<code>processing</code>"));
    let (_, callers) = admin.get("/console/callers").await;
    assert!(callers.contains("test-admin") && !callers.contains(TEST_ADMIN_KEY));

    // No patient data on any page.
    for p in [
        "/console".to_owned(),
        "/console/submissions".to_owned(),
        format!("/console/submissions/{id}"),
        format!("/console/submissions/{id2}"),
        "/console/dead-letters".to_owned(),
        "/console/callers".to_owned(),
    ] {
        let (s, text) = admin.get(&p).await;
        assert_eq!(s, 200, "{p}: {text}");
        no_markers(&p, &text);
    }

    // A reader reads, but neither lists dead letters nor replays.
    let (s, _) = reader.get(&format!("/console/submissions/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(reader.get("/console/dead-letters").await.0, 403);
    assert_eq!(reader.get("/console/submissions?state=dead-letter").await.0, 403);
    let csrf = reader.csrf().await;
    let r = reader.post("/console/dead-letters/replay", &[("csrf", &csrf), ("one", &id)], None).await;
    assert_eq!(r.status(), 403);

    // Cross-site posts and posts without the session's token are refused, and change nothing.
    let csrf = admin.csrf().await;
    let r = admin.post("/console/dead-letters/replay", &[("csrf", &csrf), ("one", &id)], Some("https://evil.example")).await;
    assert_eq!(r.status(), 403);
    let r = admin.post("/console/dead-letters/replay", &[("one", &id)], None).await;
    assert_eq!(r.status(), 403);
    let r = admin.post("/console/dead-letters/replay", &[("csrf", &csrf[..63]), ("one", &id)], None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(crate::relay::status(&api, &base, &id).await["state"], "dead-letter");

    // Replay all of the cause, from the console: delivered.
    let own = base.clone();
    let r = admin
        .post(
            "/console/dead-letters/replay",
            &[("csrf", &csrf), ("destination", "moh"), ("cause", "processing"), ("action", "cause")],
            Some(&own),
        )
        .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to, "/console/dead-letters?replayed=1&of=1");
    let (_, after) = admin.get(&to).await;
    assert!(after.contains("Replayed 1 dead delivery(ies) of 1 submission(s)"));
    wait_state(&api, &base, &id, "delivered", 20).await;
    assert_eq!(fake.arrivals().len(), 3);

    // Signing out ends the session.
    let csrf = admin.csrf().await;
    let r = admin.post("/console/sign-out", &[("csrf", &csrf)], None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(admin.get("/console").await.0, 303);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_end_to_end_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    the_console_end_to_end(sqlite_url(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_end_to_end_postgres() {
    the_console_end_to_end(postgres_url().await).await;
}

// ---------- a real browser ----------

/// A WebDriver session on Debian's chromedriver and Chromium, headless.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    url: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start() -> Browser {
        let driver_bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver is installed (scripts/test installs Debian's chromium and chromium-driver)");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        mhg::relay::install_tls();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}}}});
        let r: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("a WebDriver session: {r}")).to_owned();
        Browser { driver, http, url: format!("{base}/session/{id}") }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if !body.is_null() {
            req = req.json(&body);
        }
        let r = req.send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self.call(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {v}")).to_owned()
    }

    async fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/value"), json!({"text": text})).await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{e}/click"), json!({})).await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null).await.as_str().unwrap().to_owned()
    }

    /// Waits (10 s at most) until the page holds `needle`: a click's navigation may still run.
    async fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = self.source().await;
            if page.contains(needle) {
                return page;
            }
            assert!(Instant::now() < deadline, "{needle} never appeared in {page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn current(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null).await.as_str().unwrap().to_owned()
    }

    /// A PNG of the window, written to `dir/name` and, with `MHG_CONSOLE_SCREENSHOTS=DIR`, there too.
    async fn screenshot(&self, dir: &std::path::Path, name: &str) {
        use base64::Engine;
        let b64 = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(dir.join(name), &png).unwrap();
        if let Ok(out) = std::env::var("MHG_CONSOLE_SCREENSHOTS") {
            std::fs::write(std::path::Path::new(&out).join(name), &png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The real binary, a real store, a real browser: sign in, the overview's numbers are the API's,
/// filter the list, open a dead letter, replay it, see it delivered; screenshots of the
/// overview, a submission and the dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_and_replays_a_dead_letter() {
    let (_fake, fake_url) = Fake::start(&[422]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mhg.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[relay]\npoll_ms = 50\nbackoff_base_ms = 200\n\
             [[destinations]]\nname = \"moh\"\nkind = \"fhir\"\nbase_url = \"{fake_url}\"\n",
            dir.path().join("mhg.db").display()
        ),
    )
    .unwrap();
    let serve = Serve::new(dir.path()).config(&config);
    let base = serve.base();
    let _gw = serve.start().await;
    let api = http();
    let (_, dead) = crate::relay::post_records(&api, &base, marked("WEB-1").to_string()).await;
    let dead_id = dead["id"].as_str().unwrap().to_owned();
    wait_state(&api, &base, &dead_id, "dead-letter", 20).await;
    let mut delivered = Vec::new();
    for i in 2..5 {
        let (_, r) = crate::relay::post_records(&api, &base, marked(&format!("WEB-{i}")).to_string()).await;
        delivered.push(r["id"].as_str().unwrap().to_owned());
    }
    for id in &delivered {
        wait_state(&api, &base, id, "delivered", 20).await;
    }

    let b = Browser::start().await;
    b.go(&format!("{base}/console")).await;
    assert!(b.current().await.ends_with("/console/sign-in"), "sent to sign in");
    b.type_in("#key", TEST_ADMIN_KEY).await;
    b.click("form.sign-in button[type=submit]").await;
    let page = b.wait_for("Submissions by state").await;
    assert!(b.current().await.ends_with("/console"), "signed in");
    assert!(
        page.contains("data-state=\"delivered\">3<") && page.contains("data-state=\"dead-letter\">1<"),
        "{page}"
    );
    no_markers("the overview", &page);
    b.screenshot(dir.path(), "console-overview.png").await;

    // Filter the list to dead letters, open the one there.
    b.go(&format!("{base}/console/submissions")).await;
    b.click("#state option[value=\"dead-letter\"]").await;
    b.click("form.filters button[type=submit]").await;
    // The unfiltered page has the same heading: wait for the filtered one to replace it.
    let only_dead = |page: &str| page.contains(&dead_id) && !delivered.iter().any(|d| page.contains(d.as_str()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut list = b.wait_for("Submissions, newest first").await;
    while !only_dead(&list) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        list = b.source().await;
    }
    assert!(only_dead(&list), "only the dead letter");
    assert!(b.current().await.contains("state=dead-letter"));
    b.click(&format!("a[href=\"/console/submissions/{dead_id}\"]")).await;
    let page = b.wait_for("rejected by the fake for the test").await;
    no_markers("a submission", &page);
    b.screenshot(dir.path(), "console-submission.png").await;

    // The dead letters, replayed from there.
    b.go(&format!("{base}/console/dead-letters")).await;
    b.screenshot(dir.path(), "console-dead-letters.png").await;
    b.click(&format!("button[name=one][value=\"{dead_id}\"]")).await;
    b.wait_for("Replayed 1 dead delivery(ies) of 1 submission(s)").await;
    wait_state(&api, &base, &dead_id, "delivered", 20).await;
    b.go(&format!("{base}/console/submissions/{dead_id}")).await;
    b.wait_for("state state-delivered").await;
    b.go(&format!("{base}/console")).await;
    assert!(b.source().await.contains("data-state=\"delivered\">4<"));
}

/// A JWT from a configured issuer signs in as the API accepts it; the session ends no later
/// than the token; an expired token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_signs_in_until_it_expires() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-shared-secret-of-at-least-32-bytes-long";
    std::fs::write(dir.path().join("secret"), secret).unwrap();
    let issuer: mhg::auth::jwt::IssuerConfig = toml::from_str(&format!(
        "issuer = \"https://hs.example\"\naudience = \"mhg\"\nsecret_file = \"{}\"\nalgorithms = [\"HS256\"]\n",
        dir.path().join("secret").display()
    ))
    .unwrap();
    let cfg = mhg::auth::AuthConfig { keys_file: "/nonexistent/keys.json".into(), jwt: vec![issuer], ..Default::default() };
    let auth = mhg::auth::Auth::from_config(&cfg).unwrap();
    let guard = Arc::new(mhg::http::Guard::new(Arc::new(auth), 0, 0, 0, Duration::ZERO));
    let db = tempfile::tempdir().unwrap();
    let gw = Gateway::builder(&sqlite_url(&db).await).guard(guard).start().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let jwt = |exp: i64| {
        let claims = json!({"iss": "https://hs.example", "aud": "mhg", "exp": exp, "sub": "ops-desk", "scope": "submissions:read"});
        let msg = format!("{}.{}", b64.encode(json!({"alg": "HS256"}).to_string()), b64.encode(claims.to_string()));
        let sig = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()), msg.as_bytes());
        format!("{msg}.{}", b64.encode(sig.as_ref()))
    };
    mhg::relay::install_tls();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = client.post(format!("{}/console/sign-in", gw.base)).form_body(&[("token", &jwt(now + 120))]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let max_age: i64 = set.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!(max_age <= 120, "the session ends with the token: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = client.get(format!("{}/console", gw.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("ops-desk"));
    let r = client.post(format!("{}/console/sign-in", gw.base)).form_body(&[("token", &jwt(now - 3600))]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    gw.stop().await;
}
