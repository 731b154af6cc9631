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
    "Bundle_BUNDLE_Entry_NoFullUrl": ("implemented", W + "bundle.rs", "suite bundle", ""),
    "BUNDLE_BUNDLE_ENTRY_FULLURL_REQUIRED": ("implemented", W + "bundle.rs", "suite bundle", ""),
    "BUNDLE_ENTRY_URL_ABSOLUTE": ("implemented", W + "bundle.rs", "suite 023 bundle-fullurl", ""),
    "BUNDLE_ENTRY_URL_MATCHES_TYPE_ID": ("implemented", W + "bundle.rs", "suite bundle", ""),
    "BUNDLE_ENTRY_URL_MATCHES_NO_ID": ("implemented", W + "bundle.rs", "lib walk::bundle::tests", ""),
    "Bundle_BUNDLE_Entry_IdUrlMismatch": ("implemented", W + "bundle.rs", "lib walk::bundle::tests", "RESTful fullUrls (Java checks no other form)"),
    "Bundle_BUNDLE_Entry_NotFound": ("implemented", W + "reference.rs", "suite references", ""),
    "Reference_REF_NotFound_Bundle": ("implemented", W + "reference.rs", "suite references", ""),
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
    "Bundle_BUNDLE_MultipleMatches": ("not-yet", "", "", ""),
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
    "VALIDATION_VAL_PROFILE_SIGNPOST_OBS": ("implemented", W + "resource.rs", "suite profile 063", "the vital-signs rule"),
    "Validation_VAL_Profile_NoDefinition": ("implemented", W + "resource.rs", "suite general", "unknown resource type"),
    "Resource_RES_ID_Malformed_Chars": ("implemented", "src/validate/profile/primitive.rs (id)", "suite general", ""),
    "Resource_RES_ID_Malformed_Length": ("implemented", "src/validate/profile/primitive.rs (id)", "suite general", ""),
    "Resource_RES_ID_Missing": ("not-yet", "", "", "needs Java's per-mode id rules (create/update)"),
    "Resource_RES_ID_Prohibited": ("not-yet", "", "", ""),
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
    "Type_Specific_Checks_DT_String_Length": ("not-yet", "", "", ""),
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
    "INV_FAILED": ("implemented", W + "invariant.rs", "suite general", ""),
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
    "Reference_REF_Format1": ("not-yet", "", "", ""),
    "Reference_REF_Format2": ("not-yet", "", "", ""),
    "Reference_REF_Aggregation": ("implemented", W + "reference.rs", "suite profile 091", ""),
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
    "SD_ED_TYPE_PROFILE_UNKNOWN": ("not-yet", "", "", ""),
    "OPDEF_PROFILE_NOT_IN_PARAM": ("not-yet", "", "", "case 069"),
    "SECURITY_STRING_CONTENT_ERROR": ("not-yet", "", "", "Java's default is a warning-level check"),
    "SECURITY_STRING_CONTENT_WARNING": ("not-yet", "", "", ""),
    # --- s3-2: StructureDefinitionValidator rules (structure.rs), versioned extension URLs
    "SD_MUST_HAVE_DERIVATION": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_profile_keeps_its_bases_kind_and_type", ""),
    "SD_CONSTRAINED_KIND_NO_MATCH": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_profile_keeps_its_bases_kind_and_type", ""),
    "SD_CONSTRAINED_TYPE_NO_MATCH": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_profile_keeps_its_bases_kind_and_type", ""),
    "SD_SPECIALIZED_TYPE_MATCHES": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_profile_keeps_its_bases_kind_and_type", ""),
    "SD_DERIVATION_KIND_MISMATCH": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_profile_keeps_its_bases_kind_and_type", ""),
    "SD_EXTENSION_URL_MISSING": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs an_extension_fixes_its_url_to_its_own", ""),
    "SD_EXTENSION_URL_MISMATCH": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs an_extension_fixes_its_url_to_its_own", ""),
    "SD_NO_CONTEXT_WHEN_NOT_EXTENSION": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs only_extensions_have_contexts", "the json-name exception as Java"),
    "SD_NO_CONTEXT_INV_WHEN_NOT_EXTENSION": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs only_extensions_have_contexts", "all at contextInvariant[0], as Java numbers them"),
    "SD_PATH_TYPE_MISMATCH": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs element_paths_start_with_the_type_and_slice_only_what_repeats", ""),
    "SD_PATH_NO_SLICING": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs element_paths_start_with_the_type_and_slice_only_what_repeats", "paths of the type's own definition"),
    "SD_ILLEGAL_CHARACTERISTICS": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs constraints_only_where_the_type_gives_them_meaning", "maxLength, min/maxValue, targetProfile, minLength/maxDecimalPlaces/maxSize; bindings stay SD_ED_BIND_NO_BINDABLE (definitions.rs)"),
    "SD_ELEMENT_NOT_IN_CONSTRAINT": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs constraints_only_where_the_type_gives_them_meaning", "meaningWhenMissing"),
    "SD_NO_TYPE_CODE_ON_CODE": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs", ""),
    "SD_ELEMENT_FIXED_WRONG_TYPE": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_derived_extension_keeps_its_base_fixed_url", ""),
    "SD_ELEMENT_REASON_DERIVED": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs a_derived_extension_keeps_its_base_fixed_url; suite sd 045", "_DT_Fixed_Wrong at the element path; complex values member by member"),
    "SD_ELEMENT_PATTERN_NO_FIXED": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs", "as Java: any pattern over a base pattern"),
    "SD_NO_TYPES_OR_CONTENTREF": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs snapshot_values_have_the_elements_types", ""),
    "SD_VALUE_TYPE_IILEGAL": ("implemented", "src/validate/profile/structure.rs", "tests/it/sd_rules.rs snapshot_values_have_the_elements_types", "structuredefinition-fhir-type read as Java"),
    "EXT_VER_URL_NO_MATCH": ("implemented", W + "extension.rs", "tests/it/sd_rules.rs a_versioned_extension_url_is_an_error_only_for_a_known_extension", "a warning; an error only for a known extension"),
    "EXT_VER_URL_REVERSION": ("implemented", W + "extension.rs", "tests/it/sd_rules.rs a_versioned_extension_url_is_an_error_only_for_a_known_extension", "same text as EXT_VER_URL_NOT_ALLOWED"),
    "SD_ELEMENT_PATTERN_WRONG_TYPE": ("not-applicable", "", "", "never reached in Java: SD_ELEMENT_PATTERN_NO_FIXED fails first"),
    "EXT_VER_URL_MISLEADING": ("not-applicable", "", "", "a warning for a canonical URL that itself holds '|'; no R4 package has one"),
    "EXT_VER_URL_IGNORE": ("not-applicable", "", "", "Java finds the extension by its unversioned URL first, so this branch needs one known only by a versioned URL"),
    "SD_PATH_SLICING_DEPRECATED": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "SD_ED_SHOULD_BIND": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "SD_NESTED_MUST_SUPPORT_DIFF": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "SD_ED_BIND_MULTIPLE_TYPES": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "SD_VALUE_TYPE_REPEAT_HINT": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "SD_ED_ADDITIONAL_BINDING_USAGE_UNKNOWN": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "MustSupport_VAL_MustSupport": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "Validation_VAL_Profile_NoCheckMax": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "Validation_VAL_Profile_NoCheckMin": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "VALIDATION_VAL_PROFILE_OTHER_VERSION": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "VALIDATION_VAL_PROFILE_THIS_VERSION_OK": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "Does_not_match_slice_": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "Profile__does_not_match_for__because_of_the_following_profile_issues__": ("not-applicable", "", "", "a hint in Java (R4, default options): agreement is on errors"),
    "_has_children__and_multiple_types__in_profile_": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "_has_children__for_type__in_profile__but_cant_find_type": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "_has_no_children__and_no_types_in_profile_": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "Profile___element__Error_generating_snapshot_": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "Profile___Error_generating_snapshot": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "Profile___has_no_base_and_no_snapshot": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "StructureDefinition__at__illegal_constrained_type__from__in_": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "type_on_first_differential_element": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "type_on_first_snapshot_element_for__in__from_": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "Validation_VAL_Profile_WrongType2": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "VALIDATION_VAL_ILLEGAL_TYPE_CONSTRAINT": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "SD_ADDITIONAL_BASE_INCOMPATIBLE_VALUES": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "SD_ADDITIONAL_BASE_INDETERMINATE_TYPE": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "SD_ADDITIONAL_BASE_NO_TYPE": ("not-applicable", "", "", "snapshot generator exception (ProfileUtilities, ProfilePathProcessor, SnapshotGenerationPreProcessor, ContextUtilities)"),
    "Discriminator__is_based_on_element_existence_but_slice__neither_sets_min1_or_max0": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "Discriminator__is_based_on_type_but_slice__in__has_no_types": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "Profile_based_discriminators_must_have_a_type__in_profile_": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "Profile_based_discriminators_must_have_a_type_with_a_profile__in_profile_": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "Slice_encountered_midway_through_set_path___id___": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "Unrecognised_extension_context_": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "DISCRIMINATOR_BAD_PATH": ("not-applicable", "", "", "an exception Java throws on a profile it cannot process (reported through SLICING_CANNOT_BE_EVALUATED or as an internal error), not an instance rule"),
    "SD_TYPE_PARAMETER_MISSING": ("not-applicable", "", "", "type parameters: the R5 tools typeParameter extension (R5 CDS types), no R4 type declares one"),
    "SD_TYPE_PARAMETER_UNKNOWN": ("not-applicable", "", "", "type parameters: the R5 tools typeParameter extension (R5 CDS types), no R4 type declares one"),
    "SD_TYPE_PARAMETER_INVALID": ("not-applicable", "", "", "type parameters: the R5 tools typeParameter extension (R5 CDS types), no R4 type declares one"),
    "SD_TYPE_PARAMETER_INVALID_REF": ("not-applicable", "", "", "type parameters: the R5 tools typeParameter extension (R5 CDS types), no R4 type declares one"),
    "SD_TYPE_PARAMETER_ABSTRACT_WARNING": ("not-applicable", "", "", "type parameters: the R5 tools typeParameter extension (R5 CDS types), no R4 type declares one"),
    "SD_TYPE_PARAM_NOT_SPECIFIED": ("not-applicable", "", "", "type parameters: the R5 tools typeParameter extension (R5 CDS types), no R4 type declares one"),
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
