//! The config as text, in VyOS's three forms, and the curly format read back.
//!
//! - [`render_show`]: vyatta-cfg's `cli-shell-api showConfig` (`src/cnode/cnode-algorithm.cpp`,
//!   `_show_diff()`), what `/retrieve` `showConfig` with `configFormat: "raw"` answers
//!   (vyos-1x `configsession.py` `show_config()` runs it in the API's config session, so
//!   active and working config are compared and every line has the diff column, a space
//!   when nothing is pending) and what `show configuration` prints (active only, no column,
//!   secrets hidden).
//! - [`render_commands`]: `show configuration commands`: the same text without the
//!   column piped into `vyos-config-to-commands` (vyos1x-config's `Renderer.render_commands`
//!   through `vyos.configtree.ConfigTree.to_commands()`).
//! - [`render_boot`]: `config.boot` as `vyos-save-config.py` writes it (vyos1x-config's
//!   `Renderer.render_config` through `ConfigTree.to_string()`, then the version footer of
//!   `vyos.component_version`).
//! - [`parse`]: the curly format, as vyos1x-config's lexer and parser read it, for
//!   `/config-file` `load`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::tree::Node;
use crate::{Version, schema};

/// APT's `debVersioningSystem::CmpVersion`, which vyatta-cfg's `Cstore::sortNodes` uses
/// to order a node's children (`SORT_DEB_VERSION`): an epoch before `:`, a revision after
/// the last `-`, and in each part non-digits compared by `order()` (letters first, `~`
/// before everything, the end before any other character) and digit runs by value.
pub fn deb_version_cmp(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (&str, &str, Option<&str>) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e, r),
            None => ("", v),
        };
        match rest.rsplit_once('-') {
            Some((up, rev)) => (epoch, up, Some(rev)),
            None => (epoch, rest, None),
        }
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    let ea = if ea.is_empty() { "0" } else { ea };
    let eb = if eb.is_empty() { "0" } else { eb };
    cmp_fragment(ea, eb)
        .then_with(|| cmp_fragment(ua, ub))
        .then_with(|| match (ra, rb) {
            (None, None) => Ordering::Equal,
            // No revision is treated like "-0".
            (ra, rb) => cmp_fragment(ra.unwrap_or("0"), rb.unwrap_or("0")),
        })
}

/// APT's `order()`: digits 0, letters themselves, `~` -1, anything else above letters.
fn deb_order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// APT's `CmpFragment`.
fn cmp_fragment(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0i32;
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (vc, rc) = (deb_order(a.get(i).copied()), deb_order(b.get(j).copied()));
            if vc != rc {
                return vc.cmp(&rc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        while digit(a, i) && digit(b, j) {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// vyos1x-config's `lexical_numeric_compare` (`src/lexical_numeric_compare.c`), the
/// order its parser gives a node's children: bytes compared until both sides are at a
/// digit, then the digit runs compared by value; a shorter rest first.
pub fn lexical_numeric_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let run = |s: &[u8], mut k: usize| {
                    let start = k;
                    while s.get(k).is_some_and(u8::is_ascii_digit) {
                        k += 1;
                    }
                    (start, k)
                };
                let ((sa, ea), (sb, eb)) = (run(a, i), run(b, j));
                let na = trim_zeros(&a[sa..ea]);
                let nb = trim_zeros(&b[sb..eb]);
                let by_value = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                i = ea;
                j = eb;
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                i += 1;
                j += 1;
            }
        }
    }
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    &s[n..]
}

/// A node's children in `cmp`'s order.
fn sorted(
    m: &BTreeMap<String, Arc<Node>>,
    cmp: fn(&str, &str) -> Ordering,
) -> Vec<(&String, &Node)> {
    let mut v: Vec<_> = m.iter().map(|(k, n)| (k, &**n)).collect();
    v.sort_by(|(a, _), (b, _)| cmp(a, b));
    v
}

/// Whether `node` at `at` prints as a tag node: the schema says so and its children are
/// all nodes (tag values), as they are in any config VyOS holds.
fn is_tag(node: &Node, at: &[String], version: Version) -> bool {
    matches!(node, Node::Inner(m) if !m.is_empty() && m.values().all(|c| matches!(**c, Node::Inner(_))))
        && schema::is_tag_node(at, version)
}

/// How `cli-shell-api showConfig` prints one, for [`render_show`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowMode {
    /// `/retrieve` `showConfig` `raw`: in the API's config session, so active and working
    /// config are compared: every line starts with the diff column (` `: unchanged).
    Session,
    /// `show configuration` (`--show-active-only --show-hide-secrets`): no diff column,
    /// the values of leaves named `...password`, `...passphrase`, `...pre-shared-secret`
    /// and `...key` as `****************`.
    ActiveHideSecrets,
}

/// vyatta-cfg's `_print_value_str()` and tag-value printing: a value is put in double
/// quotes when it is empty (leaf values only) or holds one of `*}{;`, a space, a tab or
/// another line-breaking whitespace; nothing inside is escaped.
fn show_quote(v: &str, empty_quoted: bool) -> String {
    let special = |c: char| "*}{;\t\n\u{b}\u{c}\r ".contains(c);
    if (empty_quoted && v.is_empty()) || v.contains(special) {
        format!("\"{v}\"")
    } else {
        v.to_owned()
    }
}

/// The node at `path` of `root` as vyatta-cfg's `showConfig` prints it (its children at
/// indentation level 0, four spaces a level, children in Debian-version order, the
/// values of a multi leaf one line each in their order, a valueless leaf as its name).
/// `None` when there is nothing at `path`.
pub fn render_show(
    root: &Node,
    path: &[String],
    version: Version,
    mode: ShowMode,
) -> Option<String> {
    let node = root.get(path)?;
    let column = match mode {
        ShowMode::Session => " ",
        ShowMode::ActiveHideSecrets => "",
    };
    let mut out = String::new();
    let mut at = path.to_vec();
    match node {
        Node::Leaf(values) => {
            let name = path.last()?;
            leaf_lines(&mut out, column, 0, name, values, mode);
        }
        Node::Inner(_) => show_children(&mut out, node, &mut at, 0, version, column, mode),
    }
    Some(out)
}

fn indent(out: &mut String, column: &str, level: usize) {
    out.push_str(column);
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn leaf_lines(
    out: &mut String,
    column: &str,
    level: usize,
    name: &str,
    values: &[String],
    mode: ShowMode,
) {
    if values.is_empty() {
        indent(out, column, level);
        out.push_str(name);
        out.push('\n');
        return;
    }
    let secret = mode == ShowMode::ActiveHideSecrets
        && ["passphrase", "password", "pre-shared-secret", "key"]
            .iter()
            .any(|s| name.ends_with(s));
    for v in values {
        indent(out, column, level);
        out.push_str(name);
        out.push(' ');
        if secret {
            out.push_str("****************");
        } else {
            out.push_str(&show_quote(v, true));
        }
        out.push('\n');
    }
}

/// The children of the inner node at `at` (a tag node's values each as `<tag> <value> {`).
fn show_children(
    out: &mut String,
    node: &Node,
    at: &mut Vec<String>,
    level: usize,
    version: Version,
    column: &str,
    mode: ShowMode,
) {
    let Node::Inner(m) = node else { return };
    let tag = is_tag(node, at, version);
    let tag_name = at.last().cloned().unwrap_or_default();
    for (name, child) in sorted(m, deb_version_cmp) {
        at.push(name.clone());
        match child {
            Node::Leaf(values) if !tag => leaf_lines(out, column, level, name, values, mode),
            Node::Inner(_) if !tag && is_tag(child, at, version) => {
                // A tag node is not printed itself; its values are, at its level.
                show_children(out, child, at, level, version, column, mode);
            }
            _ => {
                indent(out, column, level);
                if tag {
                    out.push_str(&tag_name);
                    out.push(' ');
                    out.push_str(&show_quote(name, false));
                } else {
                    out.push_str(name);
                }
                out.push_str(" {\n");
                show_children(out, child, at, level + 1, version, column, mode);
                indent(out, column, level);
                out.push_str("}\n");
            }
        }
        at.pop();
    }
}

/// vyos1x-config's `Util.escape_string`: `"` and `\` escaped, `\n`, `\t`, `\r`, `\b` as
/// such, other control bytes as `\DDD` (decimal), UTF-8 left alone.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:03}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// `show configuration commands`: the running config as `set` lines, as
/// `vyos-config-to-commands` prints them: vyos1x-config's `render_commands` (children in
/// lexical-numeric order, `set <path> '<value>'` with the value escaped, one line per
/// value of a multi leaf, a valueless leaf or empty node without a value), then
/// `vyos.configtree.unescape_backslash()` (which un-doubles backslashes on every line but
/// the last: its pattern wants the newline after the quote), then `print()`'s newline.
pub fn render_commands(root: &Node) -> String {
    fn walk(node: &Node, path: &mut Vec<String>, out: &mut Vec<String>) {
        match node {
            Node::Leaf(values) if values.is_empty() => out.push(format!("set {}", path.join(" "))),
            Node::Leaf(values) => {
                for v in values {
                    out.push(format!("set {} '{}'", path.join(" "), escape(v)));
                }
            }
            Node::Inner(m) if m.is_empty() => out.push(format!("set {}", path.join(" "))),
            Node::Inner(m) => {
                for (name, child) in sorted(m, lexical_numeric_cmp) {
                    path.push(name.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
        }
    }
    let mut lines = Vec::new();
    if let Node::Inner(m) = root {
        for (name, child) in sorted(m, lexical_numeric_cmp) {
            walk(child, &mut vec![name.clone()], &mut lines);
        }
    }
    let last = lines.len().saturating_sub(1);
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i < last && line.ends_with('\'') && line.contains('\\') {
            // replace_backslash(): '\\\\' -> '\\' inside the quoted value.
            match line.find('\'') {
                Some(q) => {
                    out.push_str(&line[..q]);
                    out.push_str(&line[q..].replace("\\\\", "\\"));
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if lines.is_empty() {
        out.push('\n');
    }
    out
}

/// The component versions of `vyos-config-version` (vyos-1x
/// `interface-definitions/include/version/*.xml.i` on sagitta and current, October 2024),
/// sorted by name as `component_to_string()` sorts them.
fn component_versions(version: Version) -> &'static str {
    match version {
        Version::V1_4 => {
            "bgp@5:broadcast-relay@1:cluster@2:config-management@1:conntrack@5:conntrack-sync@2:container@2:dhcp-relay@2:dhcp-server@8:dhcpv6-server@1:dns-dynamic@4:dns-forwarding@4:firewall@15:flow-accounting@1:https@6:ids@1:interfaces@32:ipoe-server@3:ipsec@13:isis@3:l2tp@9:lldp@2:mdns@1:monitoring@1:nat@8:nat66@3:ntp@3:openconnect@3:ospf@2:pim@1:policy@8:pppoe-server@10:pptp@5:qos@2:quagga@11:reverse-proxy@1:rip@1:rpki@2:salt@1:snmp@3:ssh@2:sstp@6:system@27:vrf@3:vrrp@4:vyos-accel-ppp@2:wanloadbalance@3:webproxy@2"
        }
        Version::V1_5 => {
            "bgp@5:broadcast-relay@1:cluster@2:config-management@1:conntrack@5:conntrack-sync@2:container@2:dhcp-relay@2:dhcp-server@11:dhcpv6-server@6:dns-dynamic@4:dns-forwarding@4:firewall@17:flow-accounting@1:https@7:ids@1:interfaces@33:ipoe-server@4:ipsec@13:isis@3:l2tp@9:lldp@2:mdns@1:monitoring@1:nat@8:nat66@3:ntp@3:openconnect@3:openvpn@4:ospf@2:pim@1:policy@8:pppoe-server@11:pptp@5:qos@2:quagga@11:reverse-proxy@2:rip@1:rpki@2:salt@1:snmp@3:ssh@2:sstp@6:system@27:vrf@3:vrrp@4:vyos-accel-ppp@2:wanloadbalance@3:webproxy@2"
        }
    }
}

/// A config file as `vyos-save-config.py` writes it: vyos1x-config's `render_config`
/// (four spaces a level, children in lexical-numeric order, every value in double quotes
/// and escaped, a tag value on its tag's line, a valueless leaf as its name), the newline
/// `ConfigTree.to_string()` adds, then `VersionInfo.write_string()`'s newline and footer.
pub fn render_boot(root: &Node, version: Version) -> String {
    fn node(out: &mut String, at: &mut Vec<String>, n: &Node, level: usize, version: Version) {
        let pad = "    ".repeat(level);
        let Some(name) = at.last().cloned() else {
            return;
        };
        match n {
            Node::Leaf(values) if values.is_empty() => out.push_str(&format!("{pad}{name}\n")),
            Node::Leaf(values) => {
                for v in values {
                    // to_string()'s unescape_backslash() un-doubles the backslashes.
                    let v = escape(v).replace("\\\\", "\\");
                    out.push_str(&format!("{pad}{name} \"{v}\"\n"));
                }
            }
            Node::Inner(m) if m.is_empty() => out.push_str(&format!("{pad}{name}\n")),
            Node::Inner(m) if is_tag(n, at, version) => {
                for (value, child) in sorted(m, lexical_numeric_cmp) {
                    out.push_str(&format!("{pad}{name} {value} {{\n"));
                    at.push(value.clone());
                    if let Node::Inner(cm) = child {
                        for (c, grandchild) in sorted(cm, lexical_numeric_cmp) {
                            at.push(c.clone());
                            node(out, at, grandchild, level + 1, version);
                            at.pop();
                        }
                    }
                    at.pop();
                    out.push_str(&format!("{pad}}}\n"));
                }
            }
            Node::Inner(m) => {
                out.push_str(&format!("{pad}{name} {{\n"));
                for (c, child) in sorted(m, lexical_numeric_cmp) {
                    at.push(c.clone());
                    node(out, at, child, level + 1, version);
                    at.pop();
                }
                out.push_str(&format!("{pad}}}\n"));
            }
        }
    }
    let mut out = String::new();
    if let Node::Inner(m) = root {
        for (name, child) in sorted(m, lexical_numeric_cmp) {
            node(&mut out, &mut vec![name.clone()], child, 0, version);
        }
    }
    out.push_str("\n\n// Warning: Do not remove the following line.\n");
    out.push_str(&format!(
        "// vyos-config-version: \"{}\"\n// Release version: {}\n",
        component_versions(version),
        version.full()
    ));
    out
}

/// One leaf (or empty node) of a parsed config file: its path, and its value if any.
pub type FileLeaf = (Vec<String>, Option<String>);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Open,
    Close,
    Newline,
}

/// vyos1x-config's lexer (`src/vyos1x_lexer.mll`): a newline counts only after a word or
/// a quoted string; `/* */` comments and `//` lines are dropped. A backslash in a quoted
/// string is kept as it is, as `vyos.configtree.ConfigTree()` reads a file: its
/// `escape_backslash()` doubles backslashes before the lexer undoes them.
fn lex(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut line = 1;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\n' => {
                if inside {
                    out.push((Token::Newline, line));
                    inside = false;
                }
                line += 1;
                i += 1;
            }
            '{' => {
                out.push((Token::Open, line));
                inside = false;
                i += 1;
            }
            '}' => {
                out.push((Token::Close, line));
                inside = false;
                i += 1;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = line;
                i += 2;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("line {start}: comment is not closed")),
                        Some('*') if chars.get(i + 1) == Some(&'/') => {
                            i += 2;
                            break;
                        }
                        Some(ch) => {
                            if *ch == '\n' {
                                line += 1;
                            }
                            i += 1;
                        }
                    }
                }
                inside = false;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' => {
                let quote = c;
                let start = line;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(format!("line {start}: quoted string is not closed")),
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            if *ch == '\n' {
                                line += 1;
                            }
                            s.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push((Token::Str(s), start));
                inside = true;
            }
            _ => {
                let mut s = String::new();
                while let Some(ch) = chars.get(i) {
                    if matches!(ch, ' ' | '\t' | '\n' | '\r' | '{' | '}' | '"' | '\'') {
                        break;
                    }
                    s.push(*ch);
                    i += 1;
                }
                out.push((Token::Ident(s), line));
                inside = true;
            }
        }
    }
    Ok(out)
}

/// Reads a config file in the curly format into its leaves, in file order: each leaf
/// with its value (a multi leaf once per value), each valueless leaf and each empty node
/// without one. `Err` says what is wrong and on which line, as a parse failure.
pub fn parse(text: &str) -> Result<Vec<FileLeaf>, String> {
    let tokens = lex(text)?;
    let mut out = Vec::new();
    let mut pos = 0;
    let mut path = Vec::new();
    body(&tokens, &mut pos, &mut path, &mut out, false)?;
    Ok(out)
}

fn body(
    tokens: &[(Token, usize)],
    pos: &mut usize,
    path: &mut Vec<String>,
    out: &mut Vec<FileLeaf>,
    nested: bool,
) -> Result<(), String> {
    loop {
        let Some((tok, line)) = tokens.get(*pos) else {
            return if nested {
                Err("unexpected end of file: a '}' is missing".to_owned())
            } else {
                Ok(())
            };
        };
        let line = *line;
        match tok {
            Token::Close if nested => {
                *pos += 1;
                return Ok(());
            }
            Token::Ident(name) => {
                *pos += 1;
                let (value, next) = match tokens.get(*pos).map(|t| &t.0) {
                    Some(Token::Ident(v) | Token::Str(v)) => {
                        *pos += 1;
                        (Some(v.clone()), tokens.get(*pos).map(|t| &t.0))
                    }
                    other => (None, other),
                };
                match next {
                    Some(Token::Open) => {
                        *pos += 1;
                        path.push(name.clone());
                        if let Some(v) = &value {
                            path.push(v.clone());
                        }
                        let before = out.len();
                        body(tokens, pos, path, out, true)?;
                        if out.len() == before {
                            out.push((path.clone(), None));
                        }
                        if value.is_some() {
                            path.pop();
                        }
                        path.pop();
                    }
                    Some(Token::Newline) | None => {
                        if next.is_some() {
                            *pos += 1;
                        }
                        let mut p = path.clone();
                        p.push(name.clone());
                        out.push((p, value));
                    }
                    Some(_) => return Err(format!("line {line}: syntax error after {name:?}")),
                }
            }
            Token::Newline => *pos += 1,
            _ => return Err(format!("line {line}: syntax error")),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tree::path;

    fn tree() -> Node {
        let mut root = Node::default();
        let rule = root
            .inner_mut(&path(&["nat", "destination", "rule", "100"]))
            .unwrap();
        rule.insert(
            "description".into(),
            Node::Leaf(vec!["web server".into()]).into(),
        );
        rule.insert("log".into(), Node::Leaf(vec![]).into());
        rule.insert("protocol".into(), Node::Leaf(vec!["tcp".into()]).into());
        root.inner_mut(&path(&["nat", "destination", "rule", "20"]))
            .unwrap()
            .insert("protocol".into(), Node::Leaf(vec!["udp".into()]).into());
        root.inner_mut(&path(&["firewall", "group", "network-group", "LAN"]))
            .unwrap()
            .insert(
                "network".into(),
                Node::Leaf(vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()]).into(),
            );
        root.inner_mut(&path(&["system"]))
            .unwrap()
            .insert("host-name".into(), Node::Leaf(vec!["r1".into()]).into());
        root
    }

    #[test]
    fn orders() {
        let mut v = vec![
            "eth10",
            "eth2",
            "100",
            "20",
            "dhcp-server",
            "dns",
            "a-b",
            "a",
        ];
        v.sort_by(|a, b| deb_version_cmp(a, b));
        assert_eq!(
            v,
            [
                "20",
                "100",
                "a",
                "a-b",
                "dhcp-server",
                "dns",
                "eth2",
                "eth10"
            ]
        );
        let mut v = vec!["eth10", "eth2", "100", "20", "rule", "rule-1"];
        v.sort_by(|a, b| lexical_numeric_cmp(a, b));
        assert_eq!(v, ["20", "100", "eth2", "eth10", "rule", "rule-1"]);
    }

    #[test]
    fn show_as_cli_shell_api() {
        let t = tree();
        let raw = render_show(&t, &[], Version::V1_5, ShowMode::Session).unwrap();
        assert_eq!(
            raw,
            " firewall {\n     group {\n         network-group LAN {\n             network 10.0.0.0/8\n             network 192.168.0.0/16\n         }\n     }\n }\n nat {\n     destination {\n         rule 20 {\n             protocol udp\n         }\n         rule 100 {\n             description \"web server\"\n             log\n             protocol tcp\n         }\n     }\n }\n system {\n     host-name r1\n }\n"
        );
        let sub = render_show(
            &t,
            &path(&["nat", "destination", "rule"]),
            Version::V1_4,
            ShowMode::ActiveHideSecrets,
        )
        .unwrap();
        assert!(
            sub.starts_with("rule 20 {\n    protocol udp\n}\nrule 100 {\n"),
            "{sub}"
        );
    }

    #[test]
    fn commands_and_boot_read_back() {
        let t = tree();
        let cmds = render_commands(&t);
        assert_eq!(
            cmds,
            "set firewall group network-group LAN network '10.0.0.0/8'\nset firewall group network-group LAN network '192.168.0.0/16'\nset nat destination rule 20 protocol 'udp'\nset nat destination rule 100 description 'web server'\nset nat destination rule 100 log\nset nat destination rule 100 protocol 'tcp'\nset system host-name 'r1'\n"
        );
        let boot = render_boot(&t, Version::V1_4);
        assert!(
            boot.contains("    destination {\n        rule 20 {\n            protocol \"udp\"\n"),
            "{boot}"
        );
        assert!(boot.ends_with("// Release version: 1.4.3\n"));
        let leaves = parse(&boot).unwrap();
        assert_eq!(leaves.len(), 7);
        assert!(leaves.contains(&(
            path(&["nat", "destination", "rule", "100", "description"]),
            Some("web server".into())
        )));
        assert!(leaves.contains(&(path(&["nat", "destination", "rule", "100", "log"]), None)));
        // The session's raw text reads back the same.
        let raw = render_show(&t, &[], Version::V1_5, ShowMode::Session).unwrap();
        let mut a = parse(&raw).unwrap();
        let mut b = leaves;
        a.sort();
        b.sort();
        assert_eq!(a, b);
        assert!(parse("a {\n b c\n").is_err());
        assert!(parse("a \"open\n").is_err());
        // As in vyos1x-config, a comment after a value ends the line's significance.
        assert!(parse("a {\n b c /* d */\n}\n").is_err());
        assert_eq!(
            parse("/* c */ a {\n /* d */ b 'x y' // e\n }\n").unwrap(),
            [(path(&["a", "b"]), Some("x y".into()))]
        );
    }
}
