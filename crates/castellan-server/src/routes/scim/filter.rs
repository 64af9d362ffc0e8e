//! SCIM filters and attribute paths (RFC 7644 §3.4.2.2, §3.5.2), evaluated over a
//! resource's JSON: `eq ne co sw ew pr gt ge lt le`, `and`/`or`/`not`, parentheses,
//! sub-attributes (`name.givenName`, `emails.value`), value filters
//! (`emails[type eq "work"]`, `emails[type eq "work"].value`), schema-URN prefixes,
//! attribute names compared case-insensitively.

use serde_json::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An attribute path: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// The top-level attribute (as written, without a schema URN).
    pub attr: String,
    /// A value filter on a multi-valued attribute.
    pub filter: Option<Box<Filter>>,
    /// A sub-attribute.
    pub sub: Option<String>,
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, Op, Value),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(serde_json::Number),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, String> {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push((i, Tok::LParen));
                i += 1
            }
            ')' => {
                out.push((i, Tok::RParen));
                i += 1
            }
            '[' => {
                out.push((i, Tok::LBracket));
                i += 1
            }
            ']' => {
                out.push((i, Tok::RBracket));
                i += 1
            }
            '"' => {
                let start = i;
                i += 1;
                let mut raw = String::from("\"");
                loop {
                    let Some(&d) = b.get(i) else {
                        return Err(format!("the string starting at character {} is not closed", start + 1));
                    };
                    raw.push(d);
                    i += 1;
                    if d == '\\' {
                        if let Some(&e) = b.get(i) {
                            raw.push(e);
                            i += 1;
                        }
                    } else if d == '"' {
                        break;
                    }
                }
                let v: String = serde_json::from_str(&raw)
                    .map_err(|_| format!("the string starting at character {} is not valid", start + 1))?;
                out.push((start, Tok::Str(v)));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], '-' | '+' | '.' | 'e' | 'E')) {
                    i += 1;
                }
                let t: String = b[start..i].iter().collect();
                let n: serde_json::Number = serde_json::from_str(&t)
                    .map_err(|_| format!("`{t}` at character {} is not a number", start + 1))?;
                out.push((start, Tok::Num(n)));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' || c == ':' || c == '.' => {
                let start = i;
                while i < b.len() && (b[i].is_alphanumeric() || matches!(b[i], '_' | '$' | ':' | '.' | '-')) {
                    i += 1;
                }
                out.push((start, Tok::Word(b[start..i].iter().collect())));
            }
            other => return Err(format!("unexpected `{other}` at character {}", i + 1)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
}

fn kw(t: Option<&Tok>, k: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
}

/// Strips a schema URN (`urn:ietf:params:scim:schemas:core:2.0:User:userName`).
pub fn strip_urn(path: &str) -> &str {
    let lower = path.to_ascii_lowercase();
    if lower.starts_with("urn:") {
        for urn in super::schema::KNOWN_SCHEMAS {
            let u = urn.to_ascii_lowercase();
            if lower.starts_with(&format!("{u}:")) {
                return &path[u.len() + 1..];
            }
        }
        if let Some(i) = path.rfind(':') {
            return &path[i + 1..];
        }
    }
    path
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '$')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == '-' || x == '$')
}

/// Splits `attr` or `attr.sub` (after the URN) into its parts.
fn split_path(word: &str) -> Result<(String, Option<String>), String> {
    if let Some(ext) = super::schema::extension_urn(word) {
        // An extension attribute keeps its URN as the top-level name.
        let rest = &word[ext.len()..];
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if rest.is_empty() {
            return Ok((ext.to_owned(), None));
        }
        return Ok((ext.to_owned(), Some(rest.to_owned())));
    }
    let p = strip_urn(word);
    let mut parts = p.splitn(2, '.');
    let a = parts.next().unwrap_or("").to_owned();
    let s = parts.next().map(str::to_owned);
    if !valid_name(&a) || s.as_deref().is_some_and(|s| !valid_name(s)) {
        return Err(format!("`{word}` is not an attribute path"));
    }
    Ok((a, s))
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn at(&self) -> String {
        match self.toks.get(self.pos) {
            Some((i, _)) => format!("at character {}", i + 1),
            None => "at the end".into(),
        }
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while kw(self.peek(), "or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while kw(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if kw(self.peek(), "not") {
            self.pos += 1;
            if self.peek() != Some(&Tok::LParen) {
                return Err(format!("`not` must be followed by `(` {}", self.at()));
            }
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let f = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err(format!("missing `)` {}", self.at()));
            }
            return Ok(f);
        }
        let path = self.path()?;
        // A value path on its own (`emails[type eq "work"]`): some value matches.
        const OPS: [&str; 10] = ["pr", "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
        if path.filter.is_some() && path.sub.is_none() && !OPS.iter().any(|o| kw(self.peek(), o)) {
            return Ok(Filter::Present(path));
        }
        let at = self.at();
        let op = match self.next() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(format!("expected an operator (eq, ne, co, sw, ew, pr, gt, ge, lt, le) {at}")),
        };
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(format!("unknown operator `{other}` {at}")),
        };
        let at = self.at();
        let value = match self.next() {
            Some(Tok::Str(s)) => Value::String(s),
            Some(Tok::Num(n)) => Value::Number(n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => Value::Null,
            _ => return Err(format!("expected a value (a quoted string, a number, true, false or null) {at}")),
        };
        if matches!(value, Value::Bool(_) | Value::Null) && !matches!(op, Op::Eq | Op::Ne) {
            return Err(format!("`{op:?}` cannot compare with a boolean or null").to_lowercase());
        }
        Ok(Filter::Compare(path, op, value))
    }

    fn path(&mut self) -> Result<AttrPath, String> {
        let at = self.at();
        let word = match self.next() {
            Some(Tok::Word(w)) => w,
            _ => return Err(format!("expected an attribute name {at}")),
        };
        let (attr, sub) = split_path(&word)?;
        if self.peek() == Some(&Tok::LBracket) {
            if sub.is_some() {
                return Err(format!("`[` cannot follow the sub-attribute `{word}`"));
            }
            self.pos += 1;
            let inner = self.or()?;
            if self.next() != Some(Tok::RBracket) {
                return Err(format!("missing `]` {}", self.at()));
            }
            // `emails[type eq "work"].value`: the lexer reads `.value` as a word.
            let mut sub = None;
            if let Some(Tok::Word(w)) = self.peek() {
                if let Some(s) = w.strip_prefix('.') {
                    if !valid_name(s) {
                        return Err(format!("`{w}` is not a sub-attribute"));
                    }
                    sub = Some(s.to_owned());
                    self.pos += 1;
                }
            }
            return Ok(AttrPath { attr, filter: Some(Box::new(inner)), sub });
        }
        Ok(AttrPath { attr, filter: None, sub })
    }
}

/// Parses a filter (`invalidFilter` on failure: the message says what and where).
pub fn parse(s: &str) -> Result<Filter, String> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Err("the filter is empty".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let f = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected text {}", p.at()));
    }
    Ok(f)
}

/// Parses a PATCH path (`invalidPath` on failure).
pub fn parse_path(s: &str) -> Result<AttrPath, String> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Err("the path is empty".into());
    }
    let mut p = Parser { toks, pos: 0 };
    let path = p.path()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected text {} of the path", p.at()));
    }
    Ok(path)
}

/// The member of `obj` named `name`, case-insensitively.
pub fn get_ci<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    obj.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The key of `obj` named `name`, case-insensitively.
pub fn key_ci(obj: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Attributes compared case-sensitively (RFC 7643: `caseExact`).
fn case_exact(attr: &str, sub: Option<&str>) -> bool {
    let a = attr.to_ascii_lowercase();
    a == "id" || a == "externalid" || (a == "members" && sub.is_some_and(|s| s.eq_ignore_ascii_case("value")))
}

fn values_at(res: &Value, p: &AttrPath) -> Vec<Value> {
    let Some(v) = get_ci(res, &p.attr) else { return vec![] };
    let items: Vec<&Value> = match v {
        Value::Array(a) => a.iter().filter(|x| p.filter.as_ref().is_none_or(|f| matches(x, f))).collect(),
        other if p.filter.is_none() => vec![other],
        other => {
            if p.filter.as_ref().is_some_and(|f| matches(other, f)) {
                vec![other]
            } else {
                vec![]
            }
        }
    };
    let mut out = Vec::new();
    for it in items {
        match &p.sub {
            Some(s) => match get_ci(it, s) {
                Some(Value::Array(a)) => out.extend(a.iter().cloned()),
                Some(x) => out.push(x.clone()),
                None => {}
            },
            None => match it {
                // `emails eq "x"` compares the primary `value` sub-attribute.
                Value::Object(_) => {
                    if let Some(x) = get_ci(it, "value") {
                        out.push(x.clone())
                    } else {
                        out.push(it.clone())
                    }
                }
                x => out.push(x.clone()),
            },
        }
    }
    out
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(have: &Value, op: Op, want: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (have, want) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if exact { (a.clone(), b.clone()) } else { (a.to_lowercase(), b.to_lowercase()) };
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => Some(a.cmp(&b)),
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    };
    let Some(o) = ord else { return matches!(op, Op::Ne) };
    match op {
        Op::Eq => o == Ordering::Equal,
        Op::Ne => o != Ordering::Equal,
        Op::Gt => o == Ordering::Greater,
        Op::Ge => o != Ordering::Less,
        Op::Lt => o == Ordering::Less,
        Op::Le => o != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// Whether `res` (a resource, or one value of a multi-valued attribute) matches.
pub fn matches(res: &Value, f: &Filter) -> bool {
    match f {
        Filter::And(a, b) => matches(res, a) && matches(res, b),
        Filter::Or(a, b) => matches(res, a) || matches(res, b),
        Filter::Not(a) => !matches(res, a),
        Filter::Present(p) => values_at(res, p).iter().any(present),
        Filter::Compare(p, op, want) => {
            let vals = values_at(res, p);
            let exact = case_exact(&p.attr, p.sub.as_deref());
            match op {
                Op::Ne => !vals.iter().any(|v| compare(v, Op::Eq, want, exact)),
                Op::Eq if want.is_null() => vals.iter().all(|v| v.is_null()),
                _ => vals.iter().any(|v| compare(v, *op, want, exact)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_parse_and_match() {
        let u = json!({"userName": "Ada@Acme.example", "active": true, "externalId": "X1",
            "emails": [{"value": "ada@acme.example", "type": "work"}, {"value": "a@home.example", "type": "home"}],
            "name": {"givenName": "Ada"}, "meta": {"lastModified": "2026-01-02T00:00:00Z"}});
        let ok = |f: &str| matches(&u, &parse(f).unwrap_or_else(|e| panic!("{f}: {e}")));
        assert!(ok(r#"userName eq "ada@acme.example""#));
        assert!(ok(r#"USERNAME Eq "ADA@acme.example""#));
        assert!(ok(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "ada""#));
        assert!(!ok(r#"externalId eq "x1""#), "externalId is caseExact");
        assert!(ok(r#"emails.value co "home""#));
        assert!(ok(r#"emails[type eq "work"].value ew "acme.example""#));
        assert!(!ok(r#"emails[type eq "home"].value ew "acme.example""#));
        assert!(ok(r#"emails[type eq "work" and value sw "ada"]"#));
        assert!(ok(r#"not (active eq false) and (name.givenName pr or title pr)"#));
        assert!(ok(r#"meta.lastModified gt "2025-12-31T00:00:00Z""#));
        assert!(!ok(r#"title pr"#));
        assert!(ok(r#"userName ne "bob""#));
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName xx "a""#,
            r#"(userName eq "a""#,
            r#"userName eq "a" )"#,
            r#"active gt true"#,
            r#"userName eq "a" and"#,
            r#"emails[type eq "work""#,
            r#"userName eq 'a'"#,
            r#"not userName eq "a""#,
        ] {
            assert!(parse(bad).is_err(), "{bad} should not parse");
        }
        assert!(parse_path(r#"members[value eq "abc"]"#).is_ok());
        assert!(parse_path("name.givenName").is_ok());
        assert!(parse_path("name.").is_err());
        assert!(parse_path("a b").is_err());
    }
}
