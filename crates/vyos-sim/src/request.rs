//! How VyOS's API server refuses a malformed command, in its two ways:
//!
//! - A form request (fields `key` and `data`, as pyvyos and curl `--form` send) is checked
//!   by the server's own `MultipartRequest.body()` first, with texts like
//!   `Malformed command '{'op': 'showConfig'}': missing 'path' field` (the command printed
//!   by an f-string, i.e. Python's `str()` of the dict). The first such error is the
//!   answer, but only when the request then also fails the endpoint's pydantic model: a
//!   form command that pydantic accepts goes on (1.5's `{"op": "confirm"}` on `/configure`
//!   has no `path` and is fine).
//! - A JSON body is checked by pydantic alone: the answer is `str(exc.errors()[0])`, the
//!   first error as a Python dict, in pydantic 1's form on 1.4 (sagitta) and pydantic 2's
//!   on 1.5.
//!
//! Sources (vyos-1x): `src/services/vyos-http-api-server` on sagitta (the models, the
//! `MultipartRequest` class, `validation_exception_handler`), and
//! `src/services/api/rest/models.py` and `routers.py` on current/circinus.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::Version;
use crate::pyrepr::{repr, str_of, tuple};

/// The endpoints whose commands need no `path`, as the form check lists them.
//   if endpoint not in ('/config-file', '/container-image', '/image',
//                       '/configure-section', '/traceroute'):
//       if 'path' not in c: ... f"Malformed command '{c}': missing 'path' field"
const NO_PATH_ENDPOINTS: &[&str] = &[
    "/config-file",
    "/container-image",
    "/image",
    "/configure-section",
    "/traceroute",
];

/// The form check of VyOS's `MultipartRequest.body()`, on the JSON of the `data` field
/// (a list already wrapped as `{"commands": [...]}`): the first error it records, if any.
/// `key_given`: a `key` form field or a `key` inside `data`.
pub(crate) fn form_check(
    endpoint: &str,
    merged: &Value,
    key_given: bool,
) -> Option<(StatusCode, String)> {
    let bad = |text: String| Some((StatusCode::BAD_REQUEST, text));
    // `form_err`'s setter keeps the first error it is given.
    let mut first: Option<(StatusCode, String)> = None;
    let mut record = |e: Option<(StatusCode, String)>| {
        if first.is_none() {
            first = e;
        }
    };
    let cmds: Vec<&Value> = match merged.get("commands") {
        Some(Value::Array(c)) => c.iter().collect(),
        // Python would iterate a non-list here; pydantic refuses it later anyway.
        Some(_) => Vec::new(),
        None => vec![merged],
    };
    for c in cmds {
        let Value::Object(m) = c else {
            // f"Malformed command '{c}': any command must be JSON of dict" (and return)
            record(bad(format!(
                "Malformed command '{}': any command must be JSON of dict",
                str_of(c)
            )));
            return first;
        };
        let shown = str_of(c);
        if !m.contains_key("op") {
            record(bad(format!(
                "Malformed command '{shown}': missing 'op' field"
            )));
        }
        if !NO_PATH_ENDPOINTS.contains(&endpoint) {
            match m.get("path") {
                None => record(bad(format!(
                    "Malformed command '{shown}': missing 'path' field"
                ))),
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
                // f"Malformed command '{0}': ..." prints a literal 0 (sic).
                Some(Value::Array(_)) => record(bad(
                    "Malformed command '0': 'path' field must be a list of strings".to_owned(),
                )),
                Some(_) => record(bad(format!(
                    "Malformed command '{shown}': 'path' field must be a list"
                ))),
            }
        }
        if endpoint == "/configure" {
            // `if not c['path']`: a KeyError when there is no path ends the check.
            let Some(path) = m.get("path") else {
                return first;
            };
            if !truthy(path) {
                record(bad(format!(
                    "Malformed command '{shown}': 'path' list must be non-empty"
                )));
            }
            if m.get("value").is_some_and(|v| !v.is_string()) {
                record(bad(format!(
                    "Malformed command '{shown}': 'value' field must be a string"
                )));
            }
        }
    }
    if !key_given {
        record(Some((
            StatusCode::UNAUTHORIZED,
            "Valid API key is required".to_owned(),
        )));
    }
    first
}

/// Python's truth value of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// A field of a pydantic model, as the API's models declare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// `StrictStr`, required.
    Str,
    /// `StrictStr = None` (null taken as absent, as pydantic 1 does).
    OptStr,
    /// `List[StrictStr]`, required; `non_empty`: `BasePathModel`'s `check_non_empty`.
    StrList {
        /// `path must be non-empty`.
        non_empty: bool,
    },
}

/// `RetrieveModel`, `ShowModel` (`op`, `path`; the `key` is checked before).
pub(crate) const OP_AND_PATH: &[(&str, Field)] = &[
    ("op", Field::Str),
    ("path", Field::StrList { non_empty: false }),
];
/// 1.4's `ConfigFileModel` (`op`, `file`; pydantic 1 ignores other fields).
pub(crate) const CONFIG_FILE_14: &[(&str, Field)] = &[("op", Field::Str), ("file", Field::OptStr)];
/// 1.5's `ConfigFileModel` (`op`, `file`, `string`; `confirm_time` and `destructive` are
/// read by the handler).
pub(crate) const CONFIG_FILE_15: &[(&str, Field)] = &[
    ("op", Field::Str),
    ("file", Field::OptStr),
    ("string", Field::OptStr),
];
/// `BaseConfigureModel` (`op`, non-empty `path`, `value`).
pub(crate) const CONFIGURE: &[(&str, Field)] = &[
    ("op", Field::Str),
    ("path", Field::StrList { non_empty: true }),
    ("value", Field::OptStr),
];

#[derive(Debug, Clone, PartialEq)]
enum Problem {
    Missing,
    NotStr,
    NotList,
    Empty,
}

/// The first error pydantic reports for a body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelError {
    /// Where, after `'body'`.
    loc: Vec<Value>,
    problem: Problem,
    /// What was there (pydantic 2 quotes it).
    input: Value,
}

/// Checks `obj` against a model's fields, in their order (pydantic reports errors in field
/// order, and VyOS answers with the first).
pub(crate) fn check(obj: &Value, fields: &[(&str, Field)]) -> Result<(), ModelError> {
    for (name, field) in fields {
        let here = |problem, input: &Value, rest: Option<usize>| {
            let mut loc = vec![json!(name)];
            loc.extend(rest.map(|i| json!(i)));
            ModelError {
                loc,
                problem,
                input: input.clone(),
            }
        };
        let got = obj.get(*name);
        match (field, got) {
            (Field::Str | Field::StrList { .. }, None) => {
                return Err(here(Problem::Missing, obj, None));
            }
            (Field::OptStr, None | Some(Value::Null)) => {}
            (Field::Str | Field::OptStr, Some(v)) if !v.is_string() => {
                return Err(here(Problem::NotStr, v, None));
            }
            (Field::StrList { non_empty }, Some(v)) => {
                let Value::Array(items) = v else {
                    return Err(here(Problem::NotList, v, None));
                };
                if let Some((i, item)) = items.iter().enumerate().find(|(_, i)| !i.is_string()) {
                    return Err(here(Problem::NotStr, item, Some(i)));
                }
                if *non_empty && items.is_empty() {
                    return Err(here(Problem::Empty, v, None));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl ModelError {
    /// `str(exc.errors()[0])` as VyOS's `validation_exception_handler` answers it.
    /// `member`: the model's name when it was one choice of a `Union` body (pydantic 2
    /// puts it into `loc`; pydantic 1 does not).
    pub(crate) fn render(&self, version: Version, member: Option<&str>) -> String {
        let mut loc = vec![json!("body")];
        if version == Version::V1_5
            && let Some(m) = member
        {
            loc.push(json!(m));
        }
        loc.extend(self.loc.iter().cloned());
        let loc = tuple(&loc);
        match version {
            // pydantic 1: {'loc': ..., 'msg': ..., 'type': ...}
            Version::V1_4 => {
                let (msg, kind) = match self.problem {
                    Problem::Missing => ("field required", "value_error.missing"),
                    Problem::NotStr => ("str type expected", "type_error.str"),
                    Problem::NotList => ("value is not a valid list", "type_error.list"),
                    Problem::Empty => ("path must be non-empty", "value_error"),
                };
                format!("{{'loc': {loc}, 'msg': '{msg}', 'type': '{kind}'}}")
            }
            // pydantic 2 (FastAPI drops the 'url'): {'type', 'loc', 'msg', 'input'[, 'ctx']}
            Version::V1_5 => {
                let (kind, msg) = match self.problem {
                    Problem::Missing => ("missing", "Field required"),
                    Problem::NotStr => ("string_type", "Input should be a valid string"),
                    Problem::NotList => ("list_type", "Input should be a valid list"),
                    Problem::Empty => ("value_error", "Value error, path must be non-empty"),
                };
                let ctx = if self.problem == Problem::Empty {
                    ", 'ctx': {'error': ValueError('path must be non-empty')}"
                } else {
                    ""
                };
                format!(
                    "{{'type': '{kind}', 'loc': {loc}, 'msg': '{msg}', 'input': {}{ctx}}}",
                    repr(&self.input)
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn form_errors_in_vyos_order_and_text() {
        let e = form_check("/retrieve", &json!({"op": "showConfig"}), true).unwrap();
        assert_eq!(
            e,
            (
                StatusCode::BAD_REQUEST,
                "Malformed command '{'op': 'showConfig'}': missing 'path' field".to_owned()
            )
        );
        assert_eq!(
            form_check("/config-file", &json!({"op": "save"}), true),
            None
        );
        let e = form_check(
            "/configure",
            &json!({"commands": [{"op": "set", "path": ["a", 1]}]}),
            true,
        )
        .unwrap();
        assert_eq!(
            e.1,
            "Malformed command '0': 'path' field must be a list of strings"
        );
        let e = form_check("/configure", &json!({"op": "set", "path": []}), true).unwrap();
        assert_eq!(
            e.1,
            "Malformed command '{'op': 'set', 'path': []}': 'path' list must be non-empty"
        );
        let e = form_check("/configure", &json!({"commands": [5]}), true).unwrap();
        assert_eq!(
            e.1,
            "Malformed command '5': any command must be JSON of dict"
        );
        // The command errors come before the missing key.
        let e = form_check("/retrieve", &json!({}), false).unwrap();
        assert_eq!(e.1, "Malformed command '{}': missing 'op' field");
        let e = form_check("/retrieve", &json!({"op": "exists", "path": []}), false).unwrap();
        assert_eq!(e.0, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn pydantic_errors_per_version() {
        let body = json!({"key": "k", "op": "showConfig"});
        let e = check(&body, OP_AND_PATH).unwrap_err();
        assert_eq!(
            e.render(Version::V1_4, None),
            "{'loc': ('body', 'path'), 'msg': 'field required', 'type': 'value_error.missing'}"
        );
        assert_eq!(
            e.render(Version::V1_5, None),
            "{'type': 'missing', 'loc': ('body', 'path'), 'msg': 'Field required', 'input': {'key': 'k', 'op': 'showConfig'}}"
        );
        let e = check(&json!({"op": "set", "path": ["a", 3]}), CONFIGURE).unwrap_err();
        assert_eq!(
            e.render(Version::V1_5, Some("ConfigureModel")),
            "{'type': 'string_type', 'loc': ('body', 'ConfigureModel', 'path', 1), 'msg': 'Input should be a valid string', 'input': 3}"
        );
        let e = check(&json!({"op": "set", "path": []}), CONFIGURE).unwrap_err();
        assert_eq!(
            e.render(Version::V1_4, Some("ConfigureModel")),
            "{'loc': ('body', 'path'), 'msg': 'path must be non-empty', 'type': 'value_error'}"
        );
        assert!(
            check(
                &json!({"op": "set", "path": ["a"], "value": null}),
                CONFIGURE
            )
            .is_ok()
        );
    }
}
