//! Python's `repr()` and `str()` of a JSON value, as VyOS's API server prints the command
//! objects and pydantic errors it quotes in its error texts (`f"Malformed command '{c}'"`,
//! `str(exc.errors()[0])`): dicts as `{'op': 'set', 'path': ['a', 'b']}`, `True`, `False`,
//! `None`.
//!
//! serde_json here keeps object keys sorted, not in the order the client sent them, so a
//! dict of several keys comes out sorted (Python keeps the sent order).

use serde_json::Value;

/// `repr(v)`.
pub fn repr(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v);
    out
}

/// `str(v)` (what an f-string prints): a string bare, anything else as `repr`.
pub fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// A tuple of strings and integers, as pydantic's `loc`: `('body', 'path', 0)`.
pub fn tuple(items: &[Value]) -> String {
    let inner: Vec<String> = items.iter().map(repr).collect();
    match inner.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", inner.join(", ")),
    }
}

fn write(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => out.push_str(&float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&string(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&string(k));
                out.push_str(": ");
                write(out, item);
            }
            out.push('}');
        }
    }
}

/// `repr(str)`: single quotes unless the text has a single quote and no double quote.
fn string(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `repr(float)`: the shortest digits, positional for exponents -4..16, else `1e+20`.
fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let plain = format!("{f}");
        if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dicts_lists_and_scalars_as_python_prints_them() {
        assert_eq!(repr(&json!({"op": "showConfig"})), "{'op': 'showConfig'}");
        assert_eq!(
            repr(&json!({"op": "set", "path": ["a", "b"], "value": null, "x": true, "y": false})),
            "{'op': 'set', 'path': ['a', 'b'], 'value': None, 'x': True, 'y': False}"
        );
        assert_eq!(repr(&json!([1, -2, 1.5, {}])), "[1, -2, 1.5, {}]");
        assert_eq!(repr(&json!("it's")), "\"it's\"");
        assert_eq!(repr(&json!("a'b\"c")), "'a\\'b\"c'");
        assert_eq!(repr(&json!("x\ny\\")), "'x\\ny\\\\'");
        assert_eq!(str_of(&json!("bare")), "bare");
        assert_eq!(str_of(&json!(5)), "5");
        assert_eq!(tuple(&[json!("body")]), "('body',)");
        assert_eq!(
            tuple(&[json!("body"), json!("path"), json!(0)]),
            "('body', 'path', 0)"
        );
    }

    #[test]
    fn floats_as_python_prints_them() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (1e-5, "1e-05"),
            (1.5e16, "1.5e+16"),
            (123456.0, "123456.0"),
            (0.0001, "0.0001"),
        ] {
            assert_eq!(float(f), want, "{f}");
        }
    }
}
