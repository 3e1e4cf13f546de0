//! VyOS's config in its curly text format (`config.boot`, `show configuration`,
//! `showConfig` with `configFormat: "raw"`), read into a tree, and written as the `set`
//! lines people diff and paste.
//!
//! The format, as vyos1x-config's lexer and parser read it (`src/vyos1x_lexer.mll`,
//! `src/vyos1x_parser.mly`):
//!
//! ```text
//! interfaces {
//!     ethernet eth0 {                 <- a tag node and its value
//!         address 192.0.2.1/24        <- a leaf and its value
//!         address 2001:db8::1/64      <- a multi leaf: one line per value
//!         description "uplink to ISP" <- quoted ("..." or '...') when it has spaces
//!         disable                     <- a valueless leaf
//!     }
//! }
//! /* a comment */
//! // Release version: 1.4.3          <- footer lines are skipped
//! ```
//!
//! A backslash in a quoted value is taken as it is: VyOS writes values that way (vyatta-cfg's
//! `showConfig` escapes nothing; `vyos.configtree` un-doubles the backslashes its renderer
//! doubled) and reads them that way (its `escape_backslash()` doubles them before
//! vyos1x-config's lexer undoes it). VyOS refuses quotes in values, so a quote always ends
//! the string.
//!
//! A newline only ends a leaf (it counts after a word or a quoted string); a `/* */`
//! comment is dropped (and, as in VyOS, ends the line's leaf: put it on its own line).
//! Lines that repeat a leaf add values; a node or tag value that appears twice merges.
//! Leading whitespace, such as the diff column of `showConfig` raw, does not matter.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

/// A config tree: the children of a node, by name (a tag node's children are its tag
/// values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigTree {
    /// The children.
    pub children: BTreeMap<String, ConfigNode>,
}

/// One node of a [`ConfigTree`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigNode {
    /// A leaf with its values, in order; none for a valueless leaf (`disable`).
    Leaf(Vec<String>),
    /// A node (ordinary, tag node or tag value) with its children; empty for a node
    /// written as `name { }`.
    Node(ConfigTree),
}

/// Why a text is not a VyOS config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// The line (from 1).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// What the scanner finds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A bare word or a quoted string (`quoted`).
    Word {
        text: String,
        quoted: bool,
    },
    Open,
    Close,
    /// A newline that ends a leaf.
    End,
}

struct Scanner<'a> {
    rest: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    /// The last token was a word: a newline now ends a leaf.
    in_leaf: bool,
}

impl Scanner<'_> {
    /// The next token and its line; `None` at the end.
    fn next(&mut self) -> Result<Option<(Tok, usize)>, ParseError> {
        while let Some(&c) = self.rest.peek() {
            let line = self.line;
            match c {
                ' ' | '\t' | '\r' => {
                    self.rest.next();
                }
                '\n' => {
                    self.rest.next();
                    self.line += 1;
                    if std::mem::take(&mut self.in_leaf) {
                        return Ok(Some((Tok::End, line)));
                    }
                }
                '{' | '}' => {
                    self.rest.next();
                    self.in_leaf = false;
                    let t = if c == '{' { Tok::Open } else { Tok::Close };
                    return Ok(Some((t, line)));
                }
                '/' => {
                    self.rest.next();
                    match self.rest.peek() {
                        Some('*') => {
                            self.rest.next();
                            self.comment(line)?;
                            self.in_leaf = false;
                        }
                        Some('/') => {
                            while self.rest.peek().is_some_and(|c| *c != '\n') {
                                self.rest.next();
                            }
                        }
                        _ => {
                            let text = self.word("/");
                            self.in_leaf = true;
                            return Ok(Some((
                                Tok::Word {
                                    text,
                                    quoted: false,
                                },
                                line,
                            )));
                        }
                    }
                }
                '"' | '\'' => {
                    self.rest.next();
                    let text = self.quoted(c, line)?;
                    self.in_leaf = true;
                    return Ok(Some((Tok::Word { text, quoted: true }, line)));
                }
                _ => {
                    let text = self.word("");
                    self.in_leaf = true;
                    return Ok(Some((
                        Tok::Word {
                            text,
                            quoted: false,
                        },
                        line,
                    )));
                }
            }
        }
        // The end of the text ends a leaf too.
        if std::mem::take(&mut self.in_leaf) {
            return Ok(Some((Tok::End, self.line)));
        }
        Ok(None)
    }

    fn word(&mut self, start: &str) -> String {
        let mut s = start.to_owned();
        while let Some(&c) = self.rest.peek() {
            if matches!(c, ' ' | '\t' | '\n' | '\r' | '{' | '}' | '"' | '\'') {
                break;
            }
            s.push(c);
            self.rest.next();
        }
        s
    }

    fn comment(&mut self, line: usize) -> Result<(), ParseError> {
        let mut star = false;
        for c in self.rest.by_ref() {
            if c == '\n' {
                self.line += 1;
            }
            if star && c == '/' {
                return Ok(());
            }
            star = c == '*';
        }
        err(line, "the comment is not closed with */")
    }

    fn quoted(&mut self, quote: char, line: usize) -> Result<String, ParseError> {
        let mut s = String::new();
        for c in self.rest.by_ref() {
            match c {
                c if c == quote => return Ok(s),
                '\n' => {
                    self.line += 1;
                    s.push(c);
                }
                c => s.push(c),
            }
        }
        err(
            line,
            format!("the quoted string is not closed with {quote}"),
        )
    }
}

/// Reads a config in the curly format (see the module's documentation).
pub fn parse(text: &str) -> Result<ConfigTree, ParseError> {
    let mut scanner = Scanner {
        rest: text.chars().peekable(),
        line: 1,
        in_leaf: false,
    };
    let tree = parse_body(&mut scanner, None)?;
    Ok(tree)
}

/// The children up to the `}` of the node opened on line `open` (`None`: to the end).
fn parse_body(s: &mut Scanner<'_>, open: Option<usize>) -> Result<ConfigTree, ParseError> {
    let mut tree = ConfigTree::default();
    loop {
        let Some((tok, line)) = s.next()? else {
            return match open {
                Some(l) => err(l, "this node's { is never closed"),
                None => Ok(tree),
            };
        };
        let name = match tok {
            Tok::Close if open.is_some() => return Ok(tree),
            Tok::Close => return err(line, "a } closes nothing"),
            Tok::Open => return err(line, "a { without a name"),
            Tok::End => continue,
            Tok::Word { quoted: true, .. } => return err(line, "a node name cannot be quoted"),
            Tok::Word { text, .. } => text,
        };
        let (value, after) = match s.next()? {
            Some((Tok::Word { text, .. }, _)) => (Some(text), s.next()?),
            other => (None, other),
        };
        let node = match after {
            Some((Tok::Open, l)) => {
                let inner = ConfigNode::Node(parse_body(s, Some(l))?);
                match value {
                    // A tag node's value: `rule 100 { ... }`.
                    Some(v) => {
                        let mut tag = ConfigTree::default();
                        tag.children.insert(v, inner);
                        ConfigNode::Node(tag)
                    }
                    None => inner,
                }
            }
            Some((Tok::End, _)) | None => ConfigNode::Leaf(value.into_iter().collect()),
            Some((_, l)) => return err(l, format!("{name}: a leaf must end its line")),
        };
        merge(&mut tree, name, node, line)?;
    }
}

/// Adds a child: a repeated leaf adds its values; a repeated node merges its children.
fn merge(
    tree: &mut ConfigTree,
    name: String,
    node: ConfigNode,
    line: usize,
) -> Result<(), ParseError> {
    let Some(have) = tree.children.get_mut(&name) else {
        tree.children.insert(name, node);
        return Ok(());
    };
    match (have, node) {
        (ConfigNode::Leaf(values), ConfigNode::Leaf(more)) => {
            values.extend(more);
            Ok(())
        }
        (ConfigNode::Node(t), ConfigNode::Node(more)) => {
            for (n, child) in more.children {
                merge(t, n, child, line)?;
            }
            Ok(())
        }
        _ => err(line, format!("{name} is both a leaf and a node")),
    }
}

impl ConfigTree {
    /// The tree of `showConfig`'s JSON (`configFormat: "json"`): an object is a node, a
    /// string a one-value leaf, an array of strings a multi leaf, and `{}` an empty node
    /// (which is how JSON shows a valueless leaf too; both give the same `set` line).
    /// `None` for anything else.
    pub fn from_json(value: &Value) -> Option<ConfigTree> {
        let Value::Object(m) = value else { return None };
        let mut tree = ConfigTree::default();
        for (k, v) in m {
            let node = match v {
                Value::String(s) => ConfigNode::Leaf(vec![s.clone()]),
                Value::Array(items) => ConfigNode::Leaf(
                    items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()?,
                ),
                Value::Object(_) => ConfigNode::Node(ConfigTree::from_json(v)?),
                _ => return None,
            };
            tree.children.insert(k.clone(), node);
        }
        Some(tree)
    }
}

/// VyOS's order of a node's children (vyos1x-config's lexical-numeric compare): digit
/// runs by value, the rest byte by byte, so `rule 20` comes before `rule 100`.
fn natural(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let (si, sj) = (i, j);
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let x = &a[si..i];
            let y = &b[sj..j];
            let x = &x[x.iter().take_while(|c| **c == b'0').count()..];
            let y = &y[y.iter().take_while(|c| **c == b'0').count()..];
            match x.len().cmp(&y.len()).then_with(|| x.cmp(y)) {
                Ordering::Equal => {}
                o => return o,
            }
        } else {
            match a[i].cmp(&b[j]) {
                Ordering::Equal => {}
                o => return o,
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// The tree as `set` lines, in VyOS's style (`show configuration commands`): `set <path>
/// '<value>'`, one line per value of a multi leaf in its order, a valueless leaf or empty
/// node without a value; children in VyOS's order, so the lines are the same for the same
/// config, whatever the text's order. Values are written as they are, inside single
/// quotes, ready to paste into the CLI (VyOS refuses `'` in values).
pub fn set_commands(tree: &ConfigTree) -> Vec<String> {
    fn walk(t: &ConfigTree, path: &mut Vec<String>, out: &mut Vec<String>) {
        let mut children: Vec<_> = t.children.iter().collect();
        children.sort_by(|(a, _), (b, _)| natural(a, b));
        for (name, node) in children {
            path.push(name.clone());
            match node {
                ConfigNode::Leaf(values) if !values.is_empty() => {
                    for v in values {
                        out.push(format!("set {} '{v}'", path.join(" ")));
                    }
                }
                ConfigNode::Node(inner) if !inner.children.is_empty() => walk(inner, path, out),
                _ => out.push(format!("set {}", path.join(" "))),
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A config.boot as VyOS 1.4 saves it.
    const BOOT: &str = r#"firewall {
    group {
        network-group LAN {
            network "10.0.0.0/8"
            network "192.168.0.0/16"
        }
    }
}
interfaces {
    ethernet eth0 {
        address "dhcp"
        description "uplink to ISP; {backup}"
        hw-id "00:0c:29:aa:bb:cc"
    }
    /* the loopback */
    loopback lo {
    }
}
nat {
    destination {
        rule 100 {
            log
            translation {
                address "10.0.0.5"
            }
        }
        rule 20 {
            disable
        }
    }
}


// Warning: Do not remove the following line.
// vyos-config-version: "bgp@5:broadcast-relay@1:cluster@2:config-management@1:conntrack@5"
// Release version: 1.4.3
"#;

    #[test]
    fn reads_config_boot() {
        let t = parse(BOOT).unwrap();
        assert_eq!(
            set_commands(&t),
            [
                "set firewall group network-group LAN network '10.0.0.0/8'",
                "set firewall group network-group LAN network '192.168.0.0/16'",
                "set interfaces ethernet eth0 address 'dhcp'",
                "set interfaces ethernet eth0 description 'uplink to ISP; {backup}'",
                "set interfaces ethernet eth0 hw-id '00:0c:29:aa:bb:cc'",
                "set interfaces loopback lo",
                "set nat destination rule 20 disable",
                "set nat destination rule 100 log",
                "set nat destination rule 100 translation address '10.0.0.5'",
            ]
        );
    }

    #[test]
    fn reads_show_config_raw_with_its_diff_column() {
        let raw = " nat {\n     destination {\n         rule 100 {\n             description \"web server\"\n             log\n         }\n     }\n }\n system {\n     host-name r1\n     name-server 192.0.2.53\n     name-server 192.0.2.54\n }\n";
        let t = parse(raw).unwrap();
        let json = json!({"nat": {"destination": {"rule": {"100": {"description": "web server", "log": {}}}}},
                          "system": {"host-name": "r1", "name-server": ["192.0.2.53", "192.0.2.54"]}});
        assert_eq!(
            set_commands(&t),
            set_commands(&ConfigTree::from_json(&json).unwrap())
        );
        assert_eq!(set_commands(&t)[3], "set system name-server '192.0.2.53'");
    }

    #[test]
    fn merges_and_refuses() {
        let t = parse("a {\n x 1\n}\na {\n y 2\n}\nb c {\n}\nb d {\n}\n").unwrap();
        assert_eq!(
            set_commands(&t),
            ["set a x '1'", "set a y '2'", "set b c", "set b d"]
        );
        assert_eq!(parse("").unwrap(), ConfigTree::default());
        assert_eq!(parse("last value").unwrap().children.len(), 1);
        for bad in [
            "a {\n b c\n",
            "a }\n",
            "a \"open\n",
            "a {\n b c }\n",
            "a 1\na {\n}\n",
            "/* open",
            "'quoted' name\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("a {\n b c\n").unwrap_err().line, 1);
        // Backslashes in quoted values are literal, as VyOS reads them.
        assert_eq!(
            set_commands(&parse("a \"x\\ y\\n\"\n").unwrap()),
            ["set a 'x\\ y\\n'"]
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["eth10", "eth2", "100", "20", "rule", "rule-1", "a"];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(v, ["20", "100", "a", "eth2", "eth10", "rule", "rule-1"]);
    }
}
