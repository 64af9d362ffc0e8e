//! The text form (`select: * | from: project_logs('…') | filter: … | sort: … |
//! limit: …`) and the SQL form (`SELECT … FROM project_logs('…') WHERE … ORDER BY …
//! LIMIT …`), which share one expression grammar:
//!
//! ```text
//! expr     := and (OR and)*
//! and      := not (AND not)*
//! not      := NOT not | pred
//! pred     := sum [ (= | != | <> | < | <= | > | >=) sum
//!                 | IS [NOT] NULL | [NOT] IN list | [NOT] (LIKE | ILIKE) string
//!                 | MATCH string | INCLUDES literal ]
//! sum      := product ((+ | -) product)*
//! product  := unary ((* | /) unary)*
//! unary    := - unary | literal | field | ( expr )
//! field    := name (. name)*          name: word or "quoted"
//! list     := [ literal, … ] | ( literal, … )
//! literal  := 'string' | number | true | false | null
//! ```

use crate::ast::*;
use crate::lex::{lex, Tok, Token};

/// Words that cannot name a field unquoted.
pub const KEYWORDS: [&str; 20] = [
    "and", "or", "not", "is", "null", "in", "like", "ilike", "match", "includes", "true", "false", "as", "asc", "desc",
    "select", "from", "where", "order", "limit",
];

/// The form of a string query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `select: … | from: …`.
    Pipe,
    /// `SELECT … FROM …`.
    Sql,
}

pub(crate) struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// Every field read, with where it was written.
    pub fields: FieldUses,
}

type R<T> = Result<T, Error>;

impl Parser {
    pub fn new(src: &str) -> R<Parser> {
        Ok(Parser { toks: lex(src)?, i: 0, fields: Vec::new() })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek2(&self) -> &Tok {
        &self.toks[(self.i + 1).min(self.toks.len() - 1)].tok
    }

    fn at(&self) -> Position {
        self.toks[self.i].at.clone()
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err<T>(&self, expected: &str) -> R<T> {
        Err(Error::new(self.at(), format!("expected {expected}, found {}", self.peek().describe())))
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Tok::Sym(x) if *x == s) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> R<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            self.err(&format!("`{s}`"))
        }
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek().is_kw(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> R<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            self.err(&format!("`{}`", kw.to_ascii_uppercase()))
        }
    }

    pub fn at_end(&self) -> bool {
        matches!(self.peek(), Tok::Eof)
    }

    pub fn expect_end(&mut self) -> R<()> {
        self.eat_sym(";");
        if self.at_end() {
            Ok(())
        } else {
            self.err("the end of the query")
        }
    }

    // ---- expressions ----

    pub fn expr(&mut self) -> R<Expr> {
        let first = self.and()?;
        if !self.peek().is_kw("or") {
            return Ok(first);
        }
        let mut v = vec![first];
        while self.eat_kw("or") {
            v.push(self.and()?);
        }
        Ok(Expr::Or(v))
    }

    fn and(&mut self) -> R<Expr> {
        let first = self.not()?;
        if !self.peek().is_kw("and") {
            return Ok(first);
        }
        let mut v = vec![first];
        while self.eat_kw("and") {
            v.push(self.not()?);
        }
        Ok(Expr::And(v))
    }

    fn not(&mut self) -> R<Expr> {
        if self.eat_kw("not") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.pred()
    }

    fn pred(&mut self) -> R<Expr> {
        let left = self.sum()?;
        let b = Box::new;
        if let Tok::Sym(s) = self.peek() {
            let op = match *s {
                "=" => Some(CmpOp::Eq),
                "!=" => Some(CmpOp::Ne),
                "<" => Some(CmpOp::Lt),
                "<=" => Some(CmpOp::Le),
                ">" => Some(CmpOp::Gt),
                ">=" => Some(CmpOp::Ge),
                _ => None,
            };
            if let Some(op) = op {
                self.bump();
                let right = self.sum()?;
                return Ok(comparison(op, left, right));
            }
        }
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(if negated { Expr::IsNotNull(b(left)) } else { Expr::IsNull(b(left)) });
        }
        let negated = if self.peek().is_kw("not")
            && (self.peek2().is_kw("in") || self.peek2().is_kw("like") || self.peek2().is_kw("ilike"))
        {
            self.bump();
            true
        } else {
            false
        };
        let wrap = |e: Expr| if negated { Expr::Not(b(e)) } else { e };
        if self.eat_kw("in") {
            return Ok(wrap(Expr::In(b(left), self.list()?)));
        }
        for (kw, ci) in [("like", false), ("ilike", true)] {
            if self.eat_kw(kw) {
                let pattern = self.pattern()?;
                return Ok(wrap(Expr::Like { expr: b(left), pattern, case_insensitive: ci }));
            }
        }
        if self.eat_kw("match") {
            let text = self.string("a string to match")?;
            return Ok(Expr::Match(b(left), text));
        }
        if self.eat_kw("includes") {
            let lit = self.literal()?;
            return Ok(Expr::Includes(b(left), lit));
        }
        Ok(left)
    }

    fn sum(&mut self) -> R<Expr> {
        let mut left = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("+") => ArithOp::Add,
                Tok::Sym("-") => ArithOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            left = Expr::Arith(op, Box::new(left), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> R<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("*") => ArithOp::Mul,
                Tok::Sym("/") => ArithOp::Div,
                _ => return Ok(left),
            };
            self.bump();
            left = Expr::Arith(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> R<Expr> {
        if self.eat_sym("-") {
            return Ok(match self.unary()? {
                Expr::Literal(Literal::Number(n)) => Expr::Literal(Literal::Number(-n)),
                e => Expr::Arith(ArithOp::Sub, Box::new(Expr::Literal(Literal::Number(0.0))), Box::new(e)),
            });
        }
        match self.peek().clone() {
            Tok::Sym("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Str(_) | Tok::Num(_) => Ok(Expr::Literal(self.literal()?)),
            Tok::Word(w) if ["true", "false", "null"].iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                Ok(Expr::Literal(self.literal()?))
            }
            Tok::Word(w) if matches!(self.peek2(), Tok::Sym("(")) => Err(Error::new(
                self.at(),
                format!("unknown function `{w}`: functions and aggregates are not supported"),
            )),
            Tok::Word(_) | Tok::Quoted(_) => self.field(),
            _ => self.err("an expression"),
        }
    }

    fn name(&mut self) -> R<String> {
        match self.peek().clone() {
            Tok::Quoted(s) => {
                self.bump();
                Ok(s)
            }
            Tok::Word(w) if !KEYWORDS.contains(&w.to_ascii_lowercase().as_str()) => {
                self.bump();
                Ok(w)
            }
            Tok::Word(w) => {
                Err(Error::new(self.at(), format!("`{w}` is a keyword; quote it (`\"{w}\"`) to use it as a name")))
            }
            _ => self.err("a field name"),
        }
    }

    fn field(&mut self) -> R<Expr> {
        let at = self.at();
        let mut path = vec![self.name()?];
        while self.eat_sym(".") {
            match self.peek().clone() {
                // After a dot any word is a key, keywords included.
                Tok::Word(w) => {
                    self.bump();
                    path.push(w);
                }
                _ => path.push(self.name()?),
            }
        }
        self.fields.push((path.clone(), at));
        Ok(Expr::Field(path))
    }

    pub fn literal(&mut self) -> R<Literal> {
        let neg = self.eat_sym("-");
        let lit = match self.peek().clone() {
            Tok::Num(n) => Literal::Number(if neg { -n } else { n }),
            _ if neg => return self.err("a number"),
            Tok::Str(s) => Literal::String(s),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Literal::Null,
            _ => return self.err("a literal (a 'string', a number, true, false or null)"),
        };
        self.bump();
        Ok(lit)
    }

    fn list(&mut self) -> R<Vec<Literal>> {
        let close = if self.eat_sym("[") {
            "]"
        } else if self.eat_sym("(") {
            ")"
        } else {
            return self.err("a list (`[` or `(`)");
        };
        let mut v = Vec::new();
        if self.eat_sym(close) {
            return Err(Error::new(self.at(), "an `IN` list needs at least one value"));
        }
        loop {
            v.push(self.literal()?);
            if self.eat_sym(close) {
                return Ok(v);
            }
            if !self.eat_sym(",") {
                return self.err(&format!("`,` or `{close}`"));
            }
        }
    }

    fn string(&mut self, what: &str) -> R<String> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => self.err(what),
        }
    }

    fn pattern(&mut self) -> R<String> {
        let at = self.at();
        let p = self.string("a pattern string")?;
        check_pattern(&p).map_err(|m| Error::new(at, m))?;
        Ok(p)
    }

    fn projection(&mut self) -> R<Projection> {
        let at = self.at();
        let expr = self.expr()?;
        let alias = if self.eat_kw("as") {
            self.name()?
        } else {
            match &expr {
                Expr::Field(p) => p.last().cloned().unwrap_or_default(),
                _ => return Err(Error::new(at, "a computed column needs a name: add `AS <name>`")),
            }
        };
        Ok(Projection { expr, alias })
    }

    fn select(&mut self) -> R<Select> {
        if self.eat_sym("*") {
            return Ok(Select::Star);
        }
        let mut v = vec![self.projection()?];
        while self.eat_sym(",") {
            v.push(self.projection()?);
        }
        Ok(Select::Columns(v))
    }

    fn from(&mut self) -> R<From> {
        let at = self.at();
        let name = match self.peek().clone() {
            Tok::Word(w) => {
                self.bump();
                w
            }
            _ => return self.err("a source (`experiment`, `dataset`, `project_logs` or `playground_logs`)"),
        };
        let source = Source::parse(&name.to_ascii_lowercase()).ok_or_else(|| {
            Error::new(
                at,
                format!("unknown source `{name}`; use `experiment`, `dataset`, `project_logs` or `playground_logs`"),
            )
        })?;
        self.expect_sym("(")?;
        let id = self.string("the object's id as a string")?;
        self.expect_sym(")")?;
        // The shape: only spans (one row per span) is served.
        if let Tok::Word(w) = self.peek().clone() {
            if w.eq_ignore_ascii_case("spans") {
                self.bump();
            } else if w.eq_ignore_ascii_case("traces") || w.eq_ignore_ascii_case("summary") {
                return Err(Error::new(self.at(), format!("the `{w}` shape is not supported; use `spans`")));
            }
        }
        Ok(From { source, id })
    }

    fn sort(&mut self) -> R<Vec<SortKey>> {
        let mut v = Vec::new();
        loop {
            let expr = self.expr()?;
            let desc = if self.eat_kw("desc") {
                true
            } else {
                self.eat_kw("asc");
                false
            };
            v.push(SortKey { expr, desc });
            if !self.eat_sym(",") {
                return Ok(v);
            }
        }
    }

    fn limit(&mut self) -> R<u64> {
        let at = self.at();
        match self.peek().clone() {
            Tok::Num(n) if n >= 0.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
                self.bump();
                Ok(n as u64)
            }
            Tok::Num(n) => Err(Error::new(at, format!("`limit` must be a whole number from 1, got `{n}`"))),
            _ => self.err("a number"),
        }
    }

    // ---- whole queries ----

    /// `clause | clause | …`.
    pub fn pipe_query(&mut self) -> R<Query> {
        let start = self.at();
        let (mut select, mut from, mut filter, mut sort, mut limit, mut cursor) = (None, None, None, None, None, None);
        loop {
            let at = self.at();
            let name = match self.peek().clone() {
                Tok::Word(w) => w.to_ascii_lowercase(),
                _ => return self.err("a clause (`select:`, `from:`, `filter:`, `sort:`, `limit:` or `cursor:`)"),
            };
            self.bump();
            self.expect_sym(":")?;
            let dup = |set: bool| {
                if set {
                    Err(Error::new(at.clone(), format!("`{name}:` is given twice")))
                } else {
                    Ok(())
                }
            };
            match name.as_str() {
                "select" => {
                    dup(select.is_some())?;
                    select = Some(self.select()?);
                }
                "from" => {
                    dup(from.is_some())?;
                    from = Some(self.from()?);
                }
                "filter" => {
                    dup(filter.is_some())?;
                    filter = Some(self.expr()?);
                }
                "sort" => {
                    dup(sort.is_some())?;
                    sort = Some(self.sort()?);
                }
                "limit" => {
                    dup(limit.is_some())?;
                    limit = Some(self.limit()?);
                }
                "cursor" => {
                    dup(cursor.is_some())?;
                    cursor = Some(self.string("the cursor as a string")?);
                }
                "dimensions" | "measures" | "pivot" | "unpivot" | "preview_length" | "infer" => {
                    return Err(Error::new(at, format!("`{name}:` is not supported")));
                }
                other => {
                    return Err(Error::new(
                        at,
                        format!(
                        "unknown clause `{other}:`; use `select:`, `from:`, `filter:`, `sort:`, `limit:` or `cursor:`"
                    ),
                    ))
                }
            }
            if self.eat_sym("|") {
                continue;
            }
            self.expect_end()?;
            break;
        }
        let from = from.ok_or_else(|| Error::new(start, "the query has no `from:` clause"))?;
        Ok(Query {
            select: select.unwrap_or(Select::Star),
            from,
            filter,
            sort: sort.unwrap_or_default(),
            limit,
            cursor,
        })
    }

    /// `SELECT … FROM … [WHERE …] [ORDER BY …] [LIMIT …]`.
    pub fn sql_query(&mut self) -> R<Query> {
        self.expect_kw("select")?;
        let select = self.select()?;
        self.expect_kw("from")?;
        let from = self.from()?;
        let filter = if self.eat_kw("where") { Some(self.expr()?) } else { None };
        let sort = if self.eat_kw("order") {
            self.expect_kw("by")?;
            self.sort()?
        } else {
            Vec::new()
        };
        let limit = if self.eat_kw("limit") { Some(self.limit()?) } else { None };
        for kw in ["group", "offset", "having", "join"] {
            if self.peek().is_kw(kw) {
                return Err(Error::new(self.at(), format!("`{}` is not supported", kw.to_ascii_uppercase())));
            }
        }
        self.expect_end()?;
        Ok(Query { select, from, filter, sort, limit, cursor: None })
    }
}

/// `x = null` is `x IS NULL`, `x != null` is `x IS NOT NULL`; other comparisons stay.
pub(crate) fn comparison(op: CmpOp, left: Expr, right: Expr) -> Expr {
    let null = |e: &Expr| matches!(e, Expr::Literal(Literal::Null));
    let other = match (null(&left), null(&right)) {
        (false, true) => Some(left.clone()),
        (true, false) => Some(right.clone()),
        _ => None,
    };
    match (op, other) {
        (CmpOp::Eq, Some(e)) => Expr::IsNull(Box::new(e)),
        (CmpOp::Ne, Some(e)) => Expr::IsNotNull(Box::new(e)),
        _ => Expr::Cmp(op, Box::new(left), Box::new(right)),
    }
}

/// A `LIKE` pattern may not end in a lone escape.
pub(crate) fn check_pattern(p: &str) -> Result<(), String> {
    let mut escaped = false;
    for c in p.chars() {
        escaped = !escaped && c == '\\';
    }
    if escaped {
        return Err(format!("the pattern `{p}` ends with an escape character `\\`"));
    }
    Ok(())
}

/// Whether a string query is the SQL form (it starts with `SELECT`).
pub fn form_of(src: &str) -> Form {
    let lexed = lex(src);
    match lexed.as_ref().ok().and_then(|t| t.first()) {
        Some(t)
            if t.tok.is_kw("select")
                && !matches!(lexed.as_ref().ok().and_then(|t| t.get(1)).map(|t| &t.tok), Some(Tok::Sym(":"))) =>
        {
            Form::Sql
        }
        _ => Form::Pipe,
    }
}

/// Parses a string query of either form, with the positions of the fields it names.
pub fn parse_string(src: &str) -> Result<(Query, FieldUses), Error> {
    let mut p = Parser::new(src)?;
    let q = match form_of(src) {
        Form::Sql => p.sql_query()?,
        Form::Pipe => p.pipe_query()?,
    };
    Ok((q, p.fields))
}

/// Parses an expression alone (a filter given as text).
pub fn parse_expr(src: &str) -> Result<(Expr, FieldUses), Error> {
    let mut p = Parser::new(src)?;
    let e = p.expr()?;
    p.expect_end()?;
    Ok((e, p.fields))
}
