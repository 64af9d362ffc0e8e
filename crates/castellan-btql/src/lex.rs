//! The tokens of the text and SQL forms, with their positions.

use crate::ast::{Error, Position};

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare word (field, keyword, function); keywords are matched case-insensitively.
    Word(String),
    /// A `"double quoted"` identifier (never a keyword).
    Quoted(String),
    /// A `'single quoted'` string.
    Str(String),
    /// A number.
    Num(f64),
    /// Punctuation and operators: `( ) [ ] , . : | ; * + - / = != < <= > >=`.
    Sym(&'static str),
    /// The end.
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Quoted(w) => format!("`\"{w}\"`"),
            Tok::Str(s) => format!("the string `'{s}'`"),
            Tok::Num(n) => format!("the number `{n}`"),
            Tok::Sym(s) => format!("`{s}`"),
            Tok::Eof => "the end of the query".into(),
        }
    }

    /// Whether this is the keyword `kw` (a bare word, any case).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its line and column.
    pub at: Position,
}

const SYMS: [&str; 20] =
    ["!=", "<>", "<=", ">=", "==", "(", ")", "[", "]", ",", ".", ":", "|", ";", "*", "+", "-", "/", "=", "<"];

/// Splits `src` into tokens (`--` comments to the end of the line are skipped).
pub fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let mut out: Vec<Token> = Vec::new();
    let advance = |i: &mut usize, line: &mut usize, col: &mut usize, n: usize| {
        for _ in 0..n {
            if chars.get(*i) == Some(&'\n') {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let at = Position::Text { line, col };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
            continue;
        }
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col, 1);
            }
            continue;
        }
        if c == '\'' || c == '"' {
            let mut s = String::new();
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        let what = if c == '\'' { "string" } else { "quoted name" };
                        return Err(Error::new(at, format!("unterminated {what}")));
                    }
                    Some(&q) if q == c => {
                        if chars.get(j + 1) == Some(&c) {
                            s.push(c);
                            j += 2;
                        } else {
                            j += 1;
                            break;
                        }
                    }
                    Some(&other) => {
                        s.push(other);
                        j += 1;
                    }
                }
            }
            out.push(Token { tok: if c == '\'' { Tok::Str(s) } else { Tok::Quoted(s) }, at });
            let n = j - i;
            advance(&mut i, &mut line, &mut col, n);
            continue;
        }
        // A number, unless the dot follows a field (`metadata.0` is a key).
        let last = out.last().map(|t| &t.tok);
        let after_dot = matches!(last, Some(Tok::Sym(".")));
        let after_name = matches!(last, Some(Tok::Word(_) | Tok::Quoted(_)));
        let starts_number =
            c.is_ascii_digit() || (c == '.' && !after_name && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !after_dot && starts_number {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            if j < chars.len() && chars[j] == '.' && chars.get(j + 1).is_some_and(char::is_ascii_digit) {
                j += 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
            }
            if j < chars.len() && (chars[j] == 'e' || chars[j] == 'E') {
                let mut k = j + 1;
                if k < chars.len() && (chars[k] == '+' || chars[k] == '-') {
                    k += 1;
                }
                if k < chars.len() && chars[k].is_ascii_digit() {
                    while k < chars.len() && chars[k].is_ascii_digit() {
                        k += 1;
                    }
                    j = k;
                }
            }
            let text: String = chars[i..j].iter().collect();
            let n: f64 = text.parse().map_err(|_| Error::new(at.clone(), format!("bad number `{text}`")))?;
            if !n.is_finite() {
                return Err(Error::new(at, format!("number `{text}` is out of range")));
            }
            out.push(Token { tok: Tok::Num(n), at });
            let n = j - i;
            advance(&mut i, &mut line, &mut col, n);
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_' || chars[j] == '$') {
                j += 1;
            }
            out.push(Token { tok: Tok::Word(chars[i..j].iter().collect()), at });
            let n = j - i;
            advance(&mut i, &mut line, &mut col, n);
            continue;
        }
        let rest: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = SYMS.iter().chain([">"].iter()).find(|s| rest.starts_with(**s));
        match sym {
            Some(s) => {
                let canonical: &'static str = match *s {
                    "<>" => "!=",
                    "==" => "=",
                    other => other,
                };
                out.push(Token { tok: Tok::Sym(canonical), at });
                advance(&mut i, &mut line, &mut col, s.len());
            }
            None => return Err(Error::new(at, format!("unexpected character `{c}`"))),
        }
    }
    out.push(Token { tok: Tok::Eof, at: Position::Text { line, col } });
    Ok(out)
}
