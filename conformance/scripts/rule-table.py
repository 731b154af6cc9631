#!/usr/bin/env python3
"""Writes conformance/validator-rules.csv: every message of the HL7 Java validator's catalogue
(hapifhir/org.hl7.fhir.core, org.hl7.fhir.utilities/src/main/resources/Messages.properties),
one row a rule, with what the gateway's validator does about it for R4 JSON.

    python3 conformance/scripts/rule-table.py Messages.properties > conformance/validator-rules.csv

Status is one of:
  implemented     the rule is checked; `where` names the file, `test` the test or suite case
  partial         checked for part of what Java checks (said in `note`)
  not-applicable  XML, RDF or other non-JSON formats; R5-only or cross-version; not a rule but
                  a message of Java's tooling (snapshot generator, StructureMap, Liquid, IG
                  publisher, FHIRPath engine internals, rendering, signposts); needs a
                  terminology server (`tx`), which the gateway delegates (README: Terminology)
  not-yet         applies to R4 JSON and is not checked
The manual table below (IMPLEMENTED) is the judgement; the patterns after it classify the rest
by the catalogue's own key families. Plural forms (`_one`, `_other`) are one rule.
"""

import csv
import re
import sys

W = "src/validate/profile/walk/"
LR = "tests/it/local_rules.rs"
IMPLEMENTED = {
    # key: (status, where, test, note)
    # Terminology delegated ([terminology] servers, mhg validate --tx)
    "Terminology_PassThrough_TX_Message": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "a delegated code's verdict carries the server's message"),
    "Terminology_TX_Error_Coding1": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "a server without a verdict: a warning naming it (transient), never an invalid code"),
    "Terminology_TX_Error_Coding2": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "a server without a verdict: a warning naming it and why (transient)"),
    "Unable_to_connect_to_terminology_server": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "per code, a warning: not checked, terminology server unavailable: URL (unreachable)"),
    "TERMINOLOGY_TX_SYSTEM_UNSUPPORTED": ("implemented", "src/terminology/delegate/http.rs", "it tx_delegation", "a server answering without a $validate-code result (e.g. 404 for a system it lacks): a warning naming it and the status"),
    "Unknown_Code_in_Version_SCT": ("partial", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "delegated codes: the server's verdict and message, without the edition named"),
    "UNKNOWN_CODESYSTEM": ("partial", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "no error when no server is configured; with one, the server's verdict or a warning naming it"),
    "Terminology_TX_System_Unknown": ("partial", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "suite tx; it tx_delegation", "known only when loaded or delegated ([terminology] servers, --tx)"),
    "Terminology_TX_Confirm_1_CC": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "required bindings to value sets routed to a server (value_sets): its ValueSet/$validate-code verdict"),
    "Terminology_TX_Confirm_2_CC": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "extensible bindings to value sets routed to a server: a warning"),
    "Terminology_TX_Confirm_5": ("implemented", "src/validate/profile/walk/binding.rs + src/terminology/delegate/", "it tx_delegation", "extensible bindings of codes to value sets routed to a server: a warning"),
    # Bundle
    "Bundle_BUNDLE_Entry_NoFullUrl": ("implemented", W + "bundle.rs + " + W + "reference.rs", "suite bundle 021; it validator_options", "also at an entry (any Bundle type but responses) whose resource holds a reference, as Java's reference resolution reports it"),
    "BUNDLE_BUNDLE_ENTRY_FULLURL_REQUIRED": ("implemented", W + "bundle.rs", "suite bundle", ""),
    "BUNDLE_ENTRY_URL_ABSOLUTE": ("implemented", W + "bundle.rs", "suite 023 bundle-fullurl", ""),
    "BUNDLE_ENTRY_URL_MATCHES_TYPE_ID": ("implemented", W + "bundle.rs", "suite bundle", ""),
    "BUNDLE_ENTRY_URL_MATCHES_NO_ID": ("implemented", W + "bundle.rs", "lib walk::bundle::tests", ""),
    "Bundle_BUNDLE_Entry_IdUrlMismatch": ("implemented", W + "bundle.rs", "lib walk::bundle::tests", "RESTful fullUrls (Java checks no other form)"),
    "Bundle_BUNDLE_Entry_NotFound": ("implemented", W + "reference.rs", "suite references", ""),
    "Reference_REF_NotFound_Bundle": ("implemented", W + "reference.rs", "it aggregation; suite profile 091", "a reference not resolved here whose aggregation lacks referenced"),
    "Bundle_BUNDLE_Not_Local": ("implemented", W + "reference.rs", "suite references", ""),
    "Bundle_BUNDLE_Entry_Document": ("implemented", "R4 invariant bdl-11 (" + W + "invariant.rs)", "suite bundle", ""),
    "Bundle_BUNDLE_Entry_NoFirst": ("implemented", "R4 invariants bdl-11/bdl-12", "suite bundle", ""),
    "Bundle_BUNDLE_Entry_NoFirstResource": ("implemented", "R4 invariants bdl-11/bdl-12", "suite bundle", ""),
    "Bundle_Document_Date_Missing": ("implemented", "R4 invariant bdl-10", "suite bundle", ""),
    "Bundle_BUNDLE_Entry_Orphan_DOCUMENT": ("not-yet", "", "", "Java warns; the gateway does not trace document graphs"),
    "BUNDLE_LINK_UNKNOWN": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", ""),
    "BUNDLE_LINK_SEARCH_NO_DUPLICATES": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", ""),
    "BUNDLE_LINK_SEARCH_PROHIBITED": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", ""),
    "BUNDLE_SEARCH_ENTRY_NO_RESOURCE": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", ""),
    "BUNDLE_SEARCH_ENTRY_NO_RESOURCE_ID": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", ""),
    "BUNDLE_SEARCH_NOSELF": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", "a warning, as Java"),
    "BUNDLE_SEARCH_NO_MODE": ("implemented", W + "bundle.rs", "lib walk::bundle_links::tests", "a warning, as Java"),
    "Bundle_BUNDLE_FullUrl_NeedVersion": ("not-yet", "", "", ""),
    "DUPLICATE_ID": ("implemented", W + "ids.rs", "lib walk::ids::tests", "contained ids; fullUrl duplicates are bdl-7"),
    "RESOURCE_DUPLICATE_CONTAINED_ID": ("implemented", W + "ids.rs", "lib walk::ids::tests", ""),
    # Structure
    "Unrecognised_property_": ("implemented", W + "element.rs", "suite general", ""),
    "UNRECOGNISED_PROPERTY_TYPE": ("implemented", W + "element.rs", "suite fmt", ""),
    "UNRECOGNISED_PROPERTY_TYPE_WRONG": ("implemented", W + "element.rs", "suite fmt", ""),
    "Object_must_have_some_content": ("implemented", W + "element.rs", "suite general", ""),
    "Element_must_have_some_content": ("implemented", W + "value.rs", "suite general", ""),
    "ELEMENT_CANNOT_BE_NULL": ("implemented", W + "element.rs", "suite fmt", ""),
    "JSON_PROPERTY_INVALID_ARRAY": ("implemented", W + "element.rs", "suite fmt", ""),
    "Validation_VAL_Profile_Minimum": ("implemented", W + "element.rs", "suite profile", ""),
    "Validation_VAL_Profile_Maximum": ("implemented", W + "element.rs", "suite profile", ""),
    "Validation_VAL_Profile_Minimum_SLICE": ("implemented", W + "slice.rs", "suite profile", ""),
    "Validation_VAL_Profile_Minimum_SLICE_EXT": ("implemented", W + "slice.rs", "suite profile", ""),
    "Validation_VAL_Profile_NotSlice": ("implemented", W + "slice.rs", "suite profile", ""),
    "Validation_VAL_Profile_SliceOrder": ("implemented", W + "slice.rs", "suite profile", ""),
    "Validation_VAL_Profile_OutOfOrder": ("not-applicable", "", "", "JSON property order carries no meaning"),
    "Validation_VAL_Profile_NotAllowed": ("implemented", W + "element.rs", "suite profile", "max 0"),
    "Profile_VAL_NotAllowed": ("implemented", W + "element.rs", "suite profile", ""),
    "Profile_VAL_MissingElement": ("implemented", W + "value.rs", "suite profile", ""),
    "Validation_VAL_Profile_Unknown": ("implemented", W + "resource.rs", "suite profile", "a warning"),
    "Validation_VAL_Unknown_Profile": ("implemented", W + "mod.rs", "suite profile", ""),
    "Validation_VAL_Profile_WrongType": ("implemented", W + "resource.rs", "suite profile 088", ""),
    "Validation_VAL_Profile_NoMatch": ("implemented", W + "resource.rs", "tests/it/profile.rs (alternative profiles)", ""),
    "BUNDLE_BUNDLE_ENTRY_MULTIPLE_PROFILES_NO_MATCH": ("implemented", W + "resource.rs", "suite profile", ""),
    "Validation_VAL_Profile_NoDefinition": ("implemented", W + "resource.rs", "suite general", "unknown resource type"),
    "Resource_RES_ID_Malformed_Chars": ("implemented", "src/validate/profile/primitive.rs (id)", "suite general", ""),
    "Resource_RES_ID_Malformed_Length": ("implemented", "src/validate/profile/primitive.rs (id)", "suite general", ""),
    "CONTAINED_ORPHAN_DOM3": ("implemented", W + "resource.rs", "suite general", ""),
    "Contained_resource_does_not_appear_to_be_a_FHIR_resource_unknown_name_": ("implemented", W + "resource.rs", "suite general", ""),
    "Wrong_type_for_resource": ("implemented", W + "resource.rs", "suite general", ""),
    # Primitives
    "Type_Specific_Checks_DT_Boolean_Value": ("implemented", "src/validate/profile/primitive.rs", "suite fmt", ""),
    "Type_Specific_Checks_DT_Date_Valid": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_DateTime_Valid": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_DateTime_Regex": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_DateTime_TZ": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_Time_Valid": ("implemented", "src/validate/profile/primitive.rs", "lib primitive tests", ""),
    "Type_Specific_Checks_DT_Decimal_Valid": ("implemented", "src/validate/profile/primitive.rs", "suite fmt", ""),
    "Type_Specific_Checks_DT_Integer_Valid": ("implemented", "src/validate/profile/primitive.rs", "suite fmt", ""),
    "Type_Specific_Checks_DT_Integer_GT": ("implemented", W + "value.rs", "suite profile", ""),
    "Type_Specific_Checks_DT_Integer_LT": ("implemented", W + "value.rs", "suite profile", ""),
    "Type_Specific_Checks_DT_Decimal_GT": ("implemented", W + "value.rs", "suite profile", ""),
    "Type_Specific_Checks_DT_Decimal_LT": ("implemented", W + "value.rs", "suite profile", ""),
    "Type_Specific_Checks_DT_ID_Valid": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_OID_Valid": ("implemented", "src/validate/profile/primitive.rs", "lib primitive tests", ""),
    "Type_Specific_Checks_DT_OID_Start": ("implemented", "src/validate/profile/primitive.rs", "lib primitive tests", ""),
    "Type_Specific_Checks_DT_UUID_Strat": ("implemented", "src/validate/profile/primitive.rs", "lib primitive tests", ""),
    "Type_Specific_Checks_DT_UUID_Valid": ("implemented", "src/validate/profile/primitive.rs", "lib primitive tests", ""),
    "Type_Specific_Checks_DT_URI_WS": ("implemented", "src/validate/profile/primitive.rs", "lib primitive tests", ""),
    "Type_Specific_Checks_DT_Base64_Valid": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_Code_WS": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Type_Specific_Checks_DT_Primitive_ValueExt": ("implemented", W + "value.rs", "suite fmt", "ele-1"),
    "Type_Specific_Checks_DT_Primitive_Length": ("implemented", W + "value.rs", "suite profile", "maxLength"),
    "TYPE_SPECIFIC_CHECKS_DT_ATT_SIZE_CORRECT": ("implemented", W + "element.rs", "suite general", ""),
    "TYPE_SPECIFIC_CHECKS_CANONICAL_ABSOLUTE": ("partial", W + "value.rs", "suite 021", "a warning: R4's own examples use relative canonicals (conformance/README.md)"),
    "TYPE_SPECIFIC_CHECKS_DT_URL_EXAMPLE": ("implemented", W + "extension.rs", "suite extensions", "extension URLs"),
    "TYPE_CHECKS_PATTERN_CC": ("implemented", W + "value.rs", "suite profile", ""),
    "TYPE_SPECIFIC_CHECKS_DT_QTY_MIN_VALUE_WRONG": ("implemented", W + "element.rs", "suite profile", "same units only"),
    "TYPE_SPECIFIC_CHECKS_DT_QTY_MAX_VALUE_WRONG": ("implemented", W + "element.rs", "suite profile", "same units only"),
    "Type_Specific_Checks_DT_XHTML_Resolve": ("implemented", "src/validate/profile/narrative.rs", "suite general", ""),
    # Narrative XHTML, R4 txt-1 as Java's XhtmlValidator checks it.
    **{k: ("implemented", "src/validate/profile/xhtml.rs", "tests/it/narrative.rs", "") for k in (
        "XHTML_XHTML_Name_Invalid", "XHTML_XHTML_Element_Illegal", "XHTML_XHTML_Attribute_Illegal",
        "XHTML_XHTML_NS_InValid", "XHTML_XHTML_DOCTYPE_ILLEGAL", "XHTML_XHTML_ELEMENT_ILLEGAL_IN_PARA",
        "XHTML_XHTML_BLOCK_IN_PARA", "XHTML_XHTML_NO_RECURSION", "XHTML_XHTML_NO_CHILDREN",
        "XHTML_XHTML_OUT_OF_PLACE", "XHTML_XHTML_ILLEGAL_CHILDREN", "XHTML_XHTML_DUPLICATE_IDS")},
    "XHTML_XHTML_Entity_Illegal": ("implemented", "src/validate/profile/primitive.rs", "suite general", ""),
    "Bundle_BUNDLE_FullUrl_Missing": ("implemented", W + "reference.rs", "unit reference::tests", ""),
    **{k: ("implemented", "src/validate/profile/primitive.rs", "unit primitive::tests", "") for k in (
        "Type_Specific_Checks_DT_URI_OID", "Type_Specific_Checks_DT_URI_UUID")},
    "FHIR_RESOURCE_ID_CANT_BE_EXTENDED": ("implemented", "src/validate/profile/walk/value.rs", "tests/it/local_rules.rs", ""),
    "Extension_EXT_URL_Absolute": ("implemented", "src/validate/profile/walk/extension.rs", "tests/it/local_rules.rs", ""),
    "Meta_RES_Security_Duplicate": ("implemented", "src/validate/profile/walk/ids.rs", "tests/it/local_rules.rs", ""),
    "TYPE_SPECIFIC_CHECKS_DT_XHTML_ACTIVE_HREF": ("implemented", "src/validate/profile/xhtml.rs", "tests/it/local_rules.rs", ""),
    "TYPE_SPECIFIC_CHECKS_DT_XHTML_LITERAL_HREF": ("implemented", "src/validate/profile/xhtml.rs", "tests/it/local_rules.rs", ""),
    "TYPE_SPECIFIC_CHECKS_DT_XHTML_EMPTY_HREF": ("implemented", "src/validate/profile/xhtml.rs", "tests/it/local_rules.rs", ""),
    "TYPE_SPECIFIC_CHECKS_DT_ATT_HASH_MISMATCH": ("implemented", "src/validate/profile/walk/element.rs", "tests/it/local_rules.rs", ""),
    "Type_Specific_Checks_DT_Identifier_System": ("implemented", "src/validate/profile/walk/reference.rs", "tests/it/local_rules.rs", ""),
    "TYPE_SPECIFIC_CHECKS_DT_IDENTIFIER_IETF_SYSTEM_VALUE": ("implemented", "src/validate/profile/walk/reference.rs", "tests/it/local_rules.rs", ""),
    "Terminology_TX_Code_ValueSet": ("implemented", "src/validate/profile/walk/binding.rs", "tests/it/local_rules.rs", ""),
    "TERMINOLOGY_TX_SYSTEM_WRONG_BUILD": ("implemented", "src/validate/profile/walk/binding.rs", "tests/it/local_rules.rs", ""),
    "TERMINOLOGY_TX_SYSTEM_WRONG_HTML": ("implemented", "src/validate/profile/walk/binding.rs", "tests/it/local_rules.rs", ""),
    "Terminology_TX_System_Invalid": ("implemented", "src/validate/profile/walk/binding.rs", "tests/it/local_rules.rs", ""),
    "TERMINOLOGY_TX_SYSTEM_HTTPS": ("implemented", "src/validate/profile/walk/binding.rs", "tests/it/local_rules.rs", ""),
    "ARRAY_CANNOT_BE_EMPTY": ("implemented", W + "element.rs", "tests/it/profile.rs json_layer_and_primitives", ""),
    "_DT_Fixed_Wrong": ("implemented", W + "value.rs", "suite profile", ""),
    "INV_FAILED": ("implemented", W + "invariant.rs + src/validate/profile/errata.rs", "suite general; it opdef, validator_options", "with Java's corrected expressions; best-practice invariants at the -best-practice level (default warning); --want-invariants-in-messages"),
    "INV_FAILED_SOURCE": ("implemented", W + "invariant.rs", "suite profile", ""),
    # Extensions
    "Extension_EXT_Unknown": ("implemented", W + "extension.rs", "suite extensions", "error with unknown_extension_errors, else a warning"),
    "Extension_EXT_Unknown_NotHere": ("implemented", W + "extension.rs", "suite extensions", ""),
    "Extension_EXTP_Context_Wrong": ("implemented", W + "extension.rs", "suite extensions", ""),
    "Extension_EXTM_Context_Wrong": ("implemented", W + "extension.rs", "suite extensions", ""),
    "Extension_EXT_Type": ("implemented", W + "extension.rs", "suite extensions", ""),
    "Extension_EXT_Simple_ABSENT": ("implemented", "R4 invariant ext-1", "suite extensions", ""),
    "Extension_EXT_Simple_WRONG": ("implemented", "R4 invariant ext-1", "suite extensions", ""),
    "Extension_EXT_SubExtension_Invalid": ("implemented", W + "slice.rs", "suite extensions", "closed extension slicing"),
    "Extension_EXT_Url_NotFound": ("implemented", W + "element.rs", "suite extensions", "Extension.url min 1"),
    "EXT_VER_URL_NOT_ALLOWED": ("implemented", W + "extension.rs", "suite extensions", ""),
    "Extension_EXT_Modifier_N": ("implemented", W + "extension.rs", "suite extensions", ""),
    "Extension_EXT_Modifier_Y": ("implemented", W + "extension.rs", "suite extensions", ""),
    # References
    "Reference_REF_WrongTarget": ("implemented", W + "reference.rs", "suite references", ""),
    "Reference_REF_BadTargetType": ("implemented", W + "reference.rs", "suite references", ""),
    "Reference_REF_BadTargetType2": ("implemented", W + "reference.rs", "suite references", ""),
    "Reference_REF_CantResolve": ("implemented", W + "reference.rs", "suite 073 (CHECK_EXISTS_AND_TYPE)", ""),
    "Reference_REF_Aggregation": ("implemented", W + "reference.rs", "it aggregation", "contained and bundled targets against the aggregation modes"),
    "Reference_REF_ResourceType": ("implemented", W + "reference.rs", "suite references", ""),
    # Terminology, local content
    "Terminology_TX_System_Relative": ("implemented", W + "binding.rs", "suite tx", ""),
    "Terminology_TX_System_ValueSet": ("implemented", W + "binding.rs", "suite tx", ""),
    "Terminology_TX_System_ValueSet2": ("implemented", W + "binding.rs", "suite tx", ""),
    "Unknown_Code_in": ("implemented", W + "binding.rs + src/validate/profile/ucum.rs", "suite tx; lib ucum::tests, walk::binding::tests",
                        "loaded complete code systems; UCUM by its grammar, offline (conformance/ucum/ucum-atoms.tsv)"),
    "Unknown_Code_in_Version": ("implemented", W + "binding.rs", "suite tx", ""),
    "Terminology_TX_Display_Wrong": ("implemented", W + "binding.rs", "suite tx", ""),
    "Display_Name_for__should_be_one_of__instead_of": ("implemented", W + "binding.rs", "suite tx", "lists the valid displays"),
    "Display_Name_WS_for__should_be_one_of__instead_of": ("implemented", W + "binding.rs", "suite tx", "whitespace and case ignored (a warning in Java)"),
    "Terminology_TX_NoValid_1_CC": ("implemented", W + "binding.rs", "suite tx", "local expansions"),
    "Terminology_TX_NoValid_2_CC": ("implemented", W + "binding.rs", "suite tx", "local expansions"),
    "Terminology_TX_NoValid_4": ("implemented", W + "binding.rs", "suite tx", "local expansions"),
    "Terminology_TX_NoValid_5": ("implemented", W + "binding.rs", "suite tx", "local expansions"),
    "Terminology_TX_NoValid_12": ("implemented", W + "binding.rs", "suite tx", "Quantity units bound to a value set"),
    "Terminology_TX_NoValid_16": ("implemented", W + "binding.rs", "suite tx", "code, string and uri bound to a value set"),
    "Terminology_TX_NoValid_17": ("implemented", W + "binding.rs", "suite tx", ""),
    "Terminology_TX_Confirm_4a": ("implemented", W + "binding.rs", "suite tx", ""),
    "BINDING_ADDITIONAL_D": ("implemented", W + "binding.rs", "suite profile 004", "required additional bindings (R5 extension)"),
    "BINDING_ADDITIONAL_UC": ("not-yet", "", "", "usage contexts not evaluated"),
    "BINDING_MAX": ("implemented", W + "binding.rs + src/validate/profile/model.rs", "suite profile 004 (same path)", "maxValueSet extension"),
    # Definitions (conformance resources)
    "SD_TYPE_NOT_DERIVED": ("not-yet", "", "", ""),
    "CODESYSTEM_CS_COUNT_COMPLETE_WRONG": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "CODESYSTEM_PROPERTY_DUPLICATE_CODE": ("implemented", "src/validate/profile/definitions.rs", "suite tx 037", ""),
    "CODESYSTEM_PROPERTY_DUPLICATE_URI": ("implemented", "src/validate/profile/definitions.rs", "suite tx 037", ""),
    "CODESYSTEM_PROPERTY_UNDEFINED": ("implemented", "src/validate/profile/definitions.rs", "suite tx 037", ""),
    "CODESYSTEM_PROPERTY_WRONG_TYPE": ("implemented", "src/validate/profile/definitions.rs", "suite tx 037", ""),
    "CODESYSTEM_CS_SUPP_INVALID_CODE": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "VALUESET_INCLUDE_INVALID_CONCEPT_CODE": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "VALUESET_INCLUDE_INVALID_CONCEPT_CODE_VER": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "VALUESET_INCLUDE_SYSTEM_ABSOLUTE": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "VALUESET_BAD_FILTER_VALUE_BOOLEAN": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "VALUESET_BAD_FILTER_VALUE_CODED": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "VALUESET_BAD_FILTER_VALUE_CODED_INVALID": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "CONCEPTMAP_GROUP_SOURCE_CODE_INVALID": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "CONCEPTMAP_GROUP_SOURCE_CODE_INVALID_VS": ("implemented", "src/validate/profile/definitions.rs", "suite tx", ""),
    "SD_ED_BIND_NO_BINDABLE": ("implemented", "src/validate/profile/definitions.rs", "suite sd", ""),
    "SD_NO_SLICING_ON_ROOT": ("implemented", "src/validate/profile/definitions.rs", "suite sd 001", ""),
    "SD_PATH_SLICING_DEPRECATED": ("not-yet", "", "", ""),
    "SD_ED_TYPE_PROFILE_UNKNOWN": ("not-yet", "", "", ""),
    "SD_DERIVATION_KIND_MISMATCH": ("not-yet", "", "", ""),
    "SD_EXTENSION_URL_MISMATCH": ("not-yet", "", "", "case 045"),
    "SD_EXTENSION_URL_MISSING": ("not-yet", "", "", ""),
    # --- main (integrator): OperationDefinitionValidator, the implied vital-sign profiles
    "OPDEF_PROFILE_NOT_FOUND": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", ""),
    "OPDEF_PROFILE_NOT_PARAMETERS": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", ""),
    "OPDEF_PROFILE_NO_SLICE": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", "one message for a slice without a fixed or pattern name"),
    "OPDEF_PROFILE_NO_FIXED": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", "one message for a slice without a fixed or pattern name"),
    "OPDEF_PROFILE_NOT_IN_PARAM": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", "a warning at inputProfile/outputProfile"),
    "OPDEF_PROFILE_NOT_IN_PROFILE": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", "a warning at inputProfile.parameter[i], as Java locates it"),
    "OPDEF_PROFILE_NOT_VALUE_MISMATCH": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", "min and max"),
    "OPDEF_PROFILE_PROFILE_NOT_IN_PARAMS": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", ""),
    "OPDEF_PROFILE_PROFILE_NOT_IN_PROFILE": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", ""),
    "OPDEF_PROFILE_TYPE_NOT_IN_PARAMS": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", ""),
    "OPDEF_PROFILE_TYPE_NOT_IN_PROFILE": ("implemented", "src/validate/profile/opdef.rs", "it opdef; suite 069 opdef-params", ""),
    "OPDEF_CIRCULAR_DEFINITION": ("implemented", "src/validate/profile/opdef.rs", "it opdef", ""),
    "VALIDATION_VAL_PROFILE_SIGNPOST_OBS": ("implemented", "src/validate/profile/mod.rs (VITAL_SIGNS) + " + W + "resource.rs", "it profile::vital_sign_codes_call_for_their_profiles; suite 063", "Java's table of LOINC and SNOMED CT codes; an information message"),
    "VALIDATION_NO_EXPERIMENTAL_CONTENT": ("implemented", W + "resource.rs", "it validator_options; suite bundle 021", "off by default, as Java; mhg validate --no-experimental-content"),
    # --- s3-1
    # References
    "Reference_REF_NoDisplay": ("implemented", W + "reference.rs", LR + " a_reference_without_reference_or_identifier_should_have_a_display", "a warning, as Java"),
    "REFERENCE_REF_INVALID_REF": ("implemented", W + "reference.rs", LR + " a_reference_is_one_token", ""),
    "REFERENCE_REF_QUERY_INVALID": ("implemented", W + "reference.rs", LR + " a_conditional_reference_has_a_valid_query", "Java's isSearchUrl: name=value pairs, names [_a-zA-Z][_a-zA-Z0-9.:-]*"),
    "Reference_REF_Format1": ("implemented", W + "reference.rs", LR + " search_urls_as_references_only_in_transactions_and_batches", "search URLs in transactions and batches"),
    "Reference_REF_Format2": ("implemented", W + "reference.rs", LR + " search_urls_as_references_only_in_transactions_and_batches", "other relative forms were already refused as Reference_REF_ResourceType"),
    "REFERENCE_REF_SUSPICIOUS": ("not-applicable", "", "", "only with Java's assumeValidRestReferences setting, off by default"),
    "REFERENCE_REF_REL_UNSOLVEABLE": ("not-applicable", "", "", "a hint (information), under the R5 Bundle relative-reference policy"),
    "REFERENCE_RESOLUTION_FAILED": ("not-applicable", "", "", "a hint about a fetch; the gateway fetches nothing"),
    # Primitives
    "Type_Specific_Checks_DT_Primitive_NotEmpty": ("implemented", "src/validate/profile/primitive.rs", LR + " primitive_values_hl7_refuses", ""),
    "Type_Specific_Checks_DT_Integer_LT0": ("implemented", "src/validate/profile/primitive.rs", LR + " primitive_values_hl7_refuses", ""),
    "Type_Specific_Checks_DT_Integer_LT1": ("implemented", "src/validate/profile/primitive.rs", LR + " primitive_values_hl7_refuses", ""),
    "Type_Specific_Checks_DT_Instant_Valid": ("implemented", "src/validate/profile/primitive.rs", LR + " primitive_values_hl7_refuses", "calendar dates checked with the grammar"),
    "Type_Specific_Checks_DT_Primitive_WS": ("implemented", W + "value.rs", LR + " primitive_white_space_and_reasonable_years", "a warning, as Java"),
    "Type_Specific_Checks_DT_String_WS": ("implemented", W + "value.rs", LR + " primitive_white_space_and_reasonable_years", "a warning, as Java"),
    "Type_Specific_Checks_DT_String_Length": ("implemented", W + "value.rs", LR + " a_string_is_at_most_one_megabyte", ""),
    "TYPE_SPECIFIC_CHECKS_DT_BASE64_NO_WS_WARNING": ("implemented", W + "value.rs", LR + " primitive_white_space_and_reasonable_years", "a warning in R4, as Java"),
    "TYPE_SPECIFIC_CHECKS_DT_BASE64_NO_WS_ERROR": ("not-applicable", "", "", "R5 and later (R4 warns: TYPE_SPECIFIC_CHECKS_DT_BASE64_NO_WS_WARNING)"),
    "Type_Specific_Checks_DT_DateTime_Reasonable": ("implemented", W + "value.rs", LR + " primitive_white_space_and_reasonable_years", "a warning; years 1800 to the caller's today + 80"),
    "ILLEGAL_PROPERTY": ("implemented", W + "value.rs", LR + " a_primitive_value_is_not_in_its_element", "a 'value' property in a primitive's _element"),
    "UNICODE_BIDI_CONTROLS_CHARS_DISALLOWED": ("not-applicable", "", "", "only with Java's noUnicodeBiDiControlChars setting, off by default"),
    "SECURITY_STRING_CONTENT_ERROR": ("not-applicable", "", "", "only with Java's securityChecks setting, off by default"),
    "SECURITY_STRING_CONTENT_WARNING": ("not-applicable", "", "", "a hint (information) by default, not a warning"),
    "Text_should_not_be_present": ("not-applicable", "", "", "raised by Java's XML parser only"),
    "OBJECT_CANNOT_BE_KEYED_ARRAY_CHILD_COUNT": ("not-applicable", "", "", "Java's JSON parser on keyed-array definitions (logical models), none in R4 resources"),
    "OBJECT_CANNOT_BE_KEYED_ARRAY_NO_CHOICE": ("not-applicable", "", "", "Java's JSON parser on keyed-array definitions (logical models), none in R4 resources"),
    "OBJECT_CANNOT_BE_KEYED_ARRAY_NO_LIST": ("not-applicable", "", "", "Java's JSON parser on keyed-array definitions (logical models), none in R4 resources"),
    "OBJECT_CANNOT_BE_KEYED_ARRAY_PROP_NAME": ("not-applicable", "", "", "Java's JSON parser on keyed-array definitions (logical models), none in R4 resources"),
    "OBJECT_CANNOT_BE_KEYED_ARRAY_PROP_TYPE": ("not-applicable", "", "", "Java's JSON parser on keyed-array definitions (logical models), none in R4 resources"),
    "TYPE_SPECIFIER_ABSTRACT_TYPE": ("not-applicable", "", "", "Java's JSON parser on type-specifier extensions of logical models, none in R4 resources"),
    "TYPE_SPECIFIER_ILLEGAL_TYPE": ("not-applicable", "", "", "Java's JSON parser on type-specifier extensions of logical models, none in R4 resources"),
    "TYPE_SPECIFIER_NM_ABSTRACT_TYPE": ("not-applicable", "", "", "Java's JSON parser on type-specifier extensions of logical models, none in R4 resources"),
    "TYPE_SPECIFIER_NM_ILLEGAL_TYPE": ("not-applicable", "", "", "Java's JSON parser on type-specifier extensions of logical models, none in R4 resources"),
    "CODE_CASE_DIFFERENCE": ("not-applicable", "", "", "in the catalogue, raised nowhere in the Java validator's source"),
    "Coding_has_no_system__cannot_validate": ("not-applicable", "", "", "in the catalogue, raised nowhere in the Java validator's source"),
    "INVALID_DISPLAY_NAME": ("not-applicable", "", "", "in the catalogue, raised nowhere in the Java validator's source"),
    "UNKNOWN_PROPERTY": ("not-applicable", "", "", "in the catalogue, raised nowhere in the Java validator's source"),
    "Wrong_type_for_resource_expected": ("not-applicable", "", "", "in the catalogue, raised nowhere in the Java validator's source"),
    "Resource_RES_ID_Missing": ("not-applicable", "", "", "only with a resource-id rule (Java's default is optional); the gateway's $validate mode=update is its own"),
    "Resource_RES_ID_Prohibited": ("not-applicable", "", "", "only with a resource-id rule (Java's default is optional)"),
    "All_observations_should_have_a_performer": ("not-applicable", "", "", "best practice (bpCheck), off in the defaults compared"),
    "All_observations_should_have_a_subject": ("not-applicable", "", "", "best practice (bpCheck), off in the defaults compared"),
    "All_observations_should_have_an_effectiveDateTime_or_an_effectivePeriod": ("not-applicable", "", "", "best practice (bpCheck), off in the defaults compared"),
    # Bundle
    "Validation_BUNDLE_Message": ("implemented", W + "bundle.rs", LR + " a_message_starts_with_its_message_header", "at Java's path, which numbers the first entry 1 (Bundle.entry[1].resource)"),
    "BUNDLE_SEARCH_ENTRY_WRONG_RESOURCE_TYPE_MODE": ("implemented", W + "bundle_links.rs", LR + " search_set_entries_match_the_type_searched_for", "types from the self link, as Java reads them"),
    "BUNDLE_SEARCH_ENTRY_WRONG_RESOURCE_TYPE_NO_MODE": ("implemented", W + "bundle_links.rs", LR + " search_set_entries_match_the_type_searched_for", "a warning, as Java"),
    "BUNDLE_SEARCH_ENTRY_WRONG_RESOURCE_TYPE_OUTCOME": ("implemented", W + "bundle_links.rs", LR + " search_set_entries_match_the_type_searched_for", ""),
    "BUNDLE_SEARCH_ENTRY_TYPE_NOT_SURE": ("not-applicable", "", "", "a hint (information)"),
    "BUNDLE_SEARCH_SELF_NOT_UNDERSTOOD": ("not-applicable", "", "", "a hint (information)"),
    "BUNDLE_LINK_STYELSHEET_NOT_FOUND": ("implemented", W + "bundle_links.rs", LR + " a_document_stylesheet_is_fhirs_own_or_in_the_bundle", ""),
    "BUNDLE_LINK_STYELSHEET_EXTERNAL": ("implemented", W + "bundle_links.rs", LR + " a_document_stylesheet_is_fhirs_own_or_in_the_bundle", "a warning, as Java"),
    "BUNDLE_LINK_STYELSHEET_INSECURE": ("implemented", W + "bundle_links.rs", LR + " a_document_stylesheet_is_fhirs_own_or_in_the_bundle", "a warning, as Java"),
    "BUNDLE_LINK_STYELSHEET_LINKABLE": ("implemented", W + "bundle_links.rs", LR + " a_document_stylesheet_is_fhirs_own_or_in_the_bundle", "a warning, as Java (not a web link: not http, https or ftp)"),
    "Bundle_Document_Date_Missing_html": ("not-applicable", "", "", "Java checks it for FHIR versions before 4.0.1 only"),
    "Language_XHTML_Lang_Missing1": ("implemented", W + "resource.rs + src/validate/profile/xhtml.rs", LR + " a_resource_language_is_said_in_its_narrative", "a warning, as Java"),
    "Language_XHTML_Lang_Missing2": ("implemented", W + "resource.rs + src/validate/profile/xhtml.rs", LR + " a_resource_language_is_said_in_its_narrative", "a warning, as Java"),
    "Language_XHTML_Lang_Missing3": ("implemented", W + "resource.rs + src/validate/profile/xhtml.rs", LR + " a_resource_language_is_said_in_its_narrative", "a warning, as Java"),
    "Language_XHTML_Lang_Different1": ("implemented", W + "resource.rs + src/validate/profile/xhtml.rs", LR + " a_resource_language_is_said_in_its_narrative", "a warning, as Java"),
    "Language_XHTML_Lang_Different2": ("implemented", W + "resource.rs + src/validate/profile/xhtml.rs", LR + " a_resource_language_is_said_in_its_narrative", "a warning, as Java"),
    "Bundle_BUNDLE_MultipleMatches": ("implemented", W + "reference.rs + " + W + "bundle.rs", LR + " a_reference_matching_several_entries_is_ambiguous", "references without a version to a fullUrl several entries share"),
    "TYPE_SPECIFIC_CHECKS_DT_ATT_NO_CONTENT": ("implemented", W + "element.rs", LR + " an_attachment_says_what_it_holds", "a warning, as Java"),
    "TYPE_SPECIFIC_CHECKS_DT_ATT_NO_FETCHER": ("not-applicable", "", "", "Java formats it into a variable it never reports"),
    "TYPE_SPECIFIC_CHECKS_DT_ATT_UNKNOWN_URL_SCHEME": ("not-applicable", "", "", "Java formats it into a variable it never reports"),
    "TYPE_SPECIFIC_CHECKS_DT_ATT_URL_ERROR": ("not-applicable", "", "", "Java formats it into a variable it never reports"),
    "TYPE_SPECIFIC_CHECKS_CANONICAL_CONTAINED": ("implemented", "src/validate/profile/definitions.rs", LR + " a_contained_canonical_resource_has_an_absolute_url", ""),
    "UNICODE_BIDI_CONTROLS_CHARS_MATCH": ("implemented", W + "value.rs + src/validate/profile/primitive.rs", LR + " bidi_controls_are_terminated; lib primitive::tests", "a warning, as Java; Java's checkUnicodeWellFormed"),
    "Type_Specific_Checks_DT_Decimal_Range": ("implemented", W + "value.rs + src/validate/profile/primitive.rs", LR + " decimals_beyond_the_common_range_are_warned_of; lib primitive::tests", "a warning, as Java (over 18 digits or a 5-digit exponent)"),
    "TYPE_SPECIFIC_CHECKS_DT_MARKDOWN_HTML": ("implemented", W + "value.rs + src/validate/profile/primitive.rs", LR + " html_in_markdown_is_warned_of; lib primitive::tests", "a warning (Java's default); Java's exception for an ElementDefinition.comment on a .text.div is not made"),
    "Bundle_BUNDLE_Entry_NO_LOGICAL_EXPL": ("not-applicable", "", "", "in the catalogue, raised nowhere in the Java validator's source"),
}

# (status, note) by pattern on the key, first match wins.
PATTERNS = [
    (r"XML|XSI|_XSD|SCHEMATRON|NAMESPACE|Wrong_namespace|CDA|DIGSIG|RDF|TURTLE|_TTL|ttl|rdfs|XHTML_XHTML_ATTRIBUTE_XML|UNICODE_XML",
     "not-applicable", "XML/RDF/CDA only"),
    (r"XVER|_R5|R5_|R6|VIEWDEFINITION|ACTORDEF|REQUIREMENT|TESTPLAN|TEST_PLAN|MATCHETYPE|ADDITIONAL_RESOURCE|RESOURCEDEFINITION|_VER$|FHIR_VERSION|CROSS",
     "not-applicable", "R5-only or cross-version"),
    (r"^(LIQUID|SM_|IG_|RENDER|GENERATE|SNAPSHOT|PACKAGE|NPM|FHIRPATH|FHIR_PATH|CODEGEN|Illegal_path|Profile___base|Slicing_rules_on_differential|Unable_to|UNABLE_TO|Error_|ERROR_|Attempt|ATTEMPT|Adding|ADDING|Did_not|DID_NOT|Internal|INTERNAL|Bad_file|Not_done|NOT_DONE|This_|THIS_|Unsupported|UNSUPPORTED|Unknown_Data|Unknown_Date|Unknown_type|Unrecognised_predicate|element__null|element_id__null|No_|NO_|Found_|Same_id|Differential|DIFFERENTIAL|Derived|DERIVED|Base_|BASE_|Could_not|COULD_NOT|Problem|PROBLEM|Invalid_slicing|Named_items|Type_on_first|Unxpected|Unexpected|UNEXPECTED|Object_|Logical|LOGICAL|Resource_resolution|Resource_type_mismatch|Duplicate_Resource|ILLEGAL_COMMENT|VALIDATION_VAL_PROFILE_SIGNPOST|ALL_OK|MSG_DEPENDS_ON_(EXTENSION|PROFILE)|VALIDATION_MAX|VALIDATION_TIMEOUT|BUNDLE_RULE|SEARCHPARAMETER_|CAPABALITY|CapabalityStatement|ED_|JSON_COMMA|JSON_COMMENTS|JSON_PROPERTY_NO_QUOTES|JSON_PROPERTY_VALUE_NO_QUOTES)",
     "not-applicable", "message of Java's tooling (snapshot generator, engine, publisher, parser options), not an instance rule of R4 JSON"),
    (r"^(Terminology_TX_Confirm|Terminology_TX_Binding_NoServer|Terminology_TX_NoValid_15|TX_|TERMINOLOGY_TX_SYSTEM_UNSUPPORTED|Terminology_PassThrough|Terminology_TX_Error|UNKNOWN_CODESYSTEM|Unknown_Code_in_Version_SCT|INVALID_ECL|VS_EXP|VALUESET_.*EXPAN|VALUESET_TOO_COSTLY|VALUESET_SHAREABLE)",
     "not-applicable", "needs a terminology server (delegated: [terminology] servers)"),
    (r"^(Questionnaire|QUESTIONNAIRE)", "not-yet", "QuestionnaireResponse against its Questionnaire"),
    (r"^(Measure|MEASURE)", "not-yet", "MeasureReport against its Measure"),
    (r"^(BUNDLE_SIGNATURE|SIGNATURE)", "not-yet", "signature verification"),
    (r"^(XHTML|TEXT_LINK|Language_XHTML|LANGUAGE)", "not-yet", "narrative and language rules beyond txt-1/txt-2 and links"),
    (r"^(SD_|StructureDefinition|SNAPSHOT)", "not-yet", "StructureDefinition rules"),
    (r"^(CODESYSTEM|CodeSystem|VALUESET|ValueSet|VS_|CONCEPTMAP|ConceptMap)", "not-yet", "terminology resource rules"),
    (r"^(OPDEF|Operation|OPERATION|PARAMETERS|CAPABILITY|SEARCH)", "not-yet", "conformance resource rules"),
]


def main(path):
    keys = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or "=" not in line:
            continue
        k, _, msg = line.partition("=")
        k = re.sub(r"_(one|other|zero|many|few|two)$", "", k.strip())
        if k and k not in keys:
            keys[k] = msg.strip().replace("''", "'")
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["key", "message", "status", "where", "test", "note"])
    for k, msg in keys.items():
        if k in IMPLEMENTED:
            status, where, test, note = IMPLEMENTED[k]
        else:
            where = test = ""
            status, note = "not-yet", ""
            for pat, s, n in PATTERNS:
                if re.search(pat, k):
                    status, note = s, n
                    break
        w.writerow([k, msg[:160], status, where, test, note])


if __name__ == "__main__":
    main(sys.argv[1])
