//! BTQL plans as SQL: filters and sort keys pushed into the event query, with every
//! value bound as a parameter. The JSON functions differ between the databases, so
//! each backend's `backend.rs` supplies a [`JsonSql`] (`Dialect`); everything else is
//! written once here.
//!
//! Semantics are those of `castellan_btql::eval` (a differential test holds them
//! together): each value compiles to typed fragments, each NULL unless the value has
//! that type (a number as a double, a string compared by code point, a boolean), plus
//! a never-NULL "is null or missing" predicate; a comparison holds only between
//! fragments of one type, and every predicate is wrapped so that it is never NULL, so
//! `NOT` means what it says.

use crate::backend::{Db, DbRow, Dialect};
use castellan_btql::fields::{classify, FieldRef};
use castellan_btql::{eval, ArithOp, CmpOp, Expr, Literal, SortKey};
use castellan_store::*;
use sqlx::Row;
use uuid::Uuid;

/// One bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Num(f64),
    Int(i64),
    Bool(bool),
    Uuid(Uuid),
}

/// SQL being built: its parameters are numbered (`$N`, reusable) in `args` order.
#[derive(Default)]
pub(crate) struct Sql {
    pub args: Vec<Arg>,
    aliases: usize,
}

impl Sql {
    /// Binds a parameter; returns its placeholder.
    pub fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }

    /// A fresh alias for a table function.
    pub fn alias(&mut self, prefix: &str) -> String {
        self.aliases += 1;
        format!("{prefix}{}", self.aliases)
    }
}

/// What a backend says about its JSON: how to reach a path inside `e.data` and read
/// its type and value, how to iterate an array or every string inside a value, and
/// how it compares and matches text.
pub(crate) trait JsonSql {
    /// A reference to a JSON value (the document at a path, or an element).
    type Ref: Clone;
    /// Whether a path can be expressed at all.
    fn path_ok(path: &[String]) -> bool;
    /// The value at `path` below the row's data.
    fn path(sql: &mut Sql, path: &[String]) -> Self::Ref;
    /// Is a number / string / boolean / array (never NULL).
    fn is(r: &Self::Ref, kind: Kind) -> String;
    /// Is null or missing (never NULL).
    fn is_null(r: &Self::Ref) -> String;
    /// Its value as a double, a string or a boolean (only read when it has that type).
    fn num(r: &Self::Ref) -> String;
    fn text(r: &Self::Ref) -> String;
    fn boolean(r: &Self::Ref) -> String;
    /// `FROM` items iterating the elements of an array (none for anything else),
    /// and the element's reference.
    fn elements(sql: &mut Sql, r: &Self::Ref) -> (String, Self::Ref);
    /// `FROM` item, condition and text of every string inside the value (itself
    /// included).
    fn strings(sql: &mut Sql, r: &Self::Ref) -> (String, String, String);
    /// Text compared by code point.
    fn collate(text: &str) -> String;
    /// ASCII-only lower case.
    fn lower(text: &str) -> String;
    /// `text` matches a `LIKE` pattern (bound by the dialect, which may rewrite it).
    fn like(sql: &mut Sql, text: &str, pattern: &str) -> String;
    /// `text` contains `needle` (a placeholder).
    fn contains(text: &str, needle: &str) -> String;
}

/// A JSON type a dialect can test for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Number,
    String,
    Bool,
    Array,
}

/// A value as typed SQL fragments.
#[derive(Debug, Clone)]
struct Typed {
    num: Option<String>,
    text: Option<String>,
    boolean: Option<String>,
    null: String,
}

impl Typed {
    fn null() -> Typed {
        Typed { num: None, text: None, boolean: None, null: "TRUE".into() }
    }
}

type D = Dialect;

fn of_ref(r: &<D as JsonSql>::Ref) -> Typed {
    let case = |k: Kind, v: String| format!("(CASE WHEN {} THEN {v} END)", D::is(r, k));
    Typed {
        num: Some(case(Kind::Number, format!("CAST({} AS DOUBLE PRECISION)", D::num(r)))),
        text: Some(case(Kind::String, D::collate(&D::text(r)))),
        boolean: Some(case(Kind::Bool, D::boolean(r))),
        null: D::is_null(r),
    }
}

fn literal(sql: &mut Sql, l: &Literal) -> Typed {
    let mut t = Typed { num: None, text: None, boolean: None, null: "FALSE".into() };
    match l {
        Literal::Null => return Typed::null(),
        Literal::Bool(b) => t.boolean = Some(sql.arg(Arg::Bool(*b))),
        Literal::Number(n) => t.num = Some(sql.arg(Arg::Num(*n))),
        Literal::String(s) => t.text = Some(D::collate(&sql.arg(Arg::Text(s.clone())))),
    }
    t
}

fn to_literal(v: &serde_json::Value) -> Literal {
    match v {
        serde_json::Value::Bool(b) => Literal::Bool(*b),
        serde_json::Value::Number(n) => n.as_f64().map(Literal::Number).unwrap_or(Literal::Null),
        serde_json::Value::String(s) => Literal::String(s.clone()),
        _ => Literal::Null,
    }
}

fn typed(sql: &mut Sql, e: &Expr) -> Typed {
    if !matches!(e, Expr::Literal(_)) && e.is_constant() {
        let v = eval::value(e, &serde_json::Map::new()).into_owned();
        return literal(sql, &to_literal(&v));
    }
    match e {
        Expr::Literal(l) => literal(sql, l),
        Expr::Field(path) => match classify(path) {
            FieldRef::RowId => Typed { text: Some(D::collate("e.row_id")), ..Typed::not_null() },
            FieldRef::XactId => Typed { text: Some(D::collate("CAST(e.xact_id AS TEXT)")), ..Typed::not_null() },
            FieldRef::RootSpanId => Typed {
                text: Some(D::collate("e.root_span_id")),
                null: "(e.root_span_id IS NULL)".into(),
                ..Typed::not_null()
            },
            FieldRef::IsRoot => Typed { boolean: Some("e.is_root".into()), ..Typed::not_null() },
            FieldRef::SpanId => {
                let own = of_ref(&D::path(sql, &["span_id".to_owned()]));
                let own = own.text.unwrap_or_else(|| "NULL".into());
                let text = format!("(CASE WHEN {own} <> '' THEN {own} ELSE {} END)", D::collate("e.row_id"));
                Typed { text: Some(text), ..Typed::not_null() }
            }
            FieldRef::Data(p) => of_ref(&D::path(sql, p)),
        },
        Expr::Arith(op, a, b) => {
            let (a, b) = (typed(sql, a), typed(sql, b));
            let (Some(x), Some(y)) = (a.num, b.num) else { return Typed::null() };
            let (sym, guard) = match op {
                ArithOp::Add => ("+", String::new()),
                ArithOp::Sub => ("-", String::new()),
                ArithOp::Mul => ("*", String::new()),
                ArithOp::Div => ("/", format!(" AND {y} <> 0")),
            };
            let num = format!("(CASE WHEN {x} IS NOT NULL AND {y} IS NOT NULL{guard} THEN {x} {sym} {y} END)");
            Typed { null: format!("({num} IS NULL)"), num: Some(num), text: None, boolean: None }
        }
        _ => Typed { boolean: Some(pred(sql, e)), ..Typed::not_null() },
    }
}

impl Typed {
    fn not_null() -> Typed {
        Typed { num: None, text: None, boolean: None, null: "FALSE".into() }
    }
}

fn sym(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

/// `COALESCE(p1 OR p2 …, FALSE)`, or FALSE for none.
fn any_of(parts: Vec<String>) -> String {
    if parts.is_empty() {
        "FALSE".into()
    } else {
        format!("COALESCE(({}), FALSE)", parts.join(") OR ("))
    }
}

fn compare(op: CmpOp, a: &Typed, b: &Typed) -> String {
    let mut parts = Vec::new();
    for (x, y) in [(&a.num, &b.num), (&a.text, &b.text), (&a.boolean, &b.boolean)] {
        if let (Some(x), Some(y)) = (x, y) {
            parts.push(format!("{x} {} {y}", sym(op)));
        }
    }
    any_of(parts)
}

/// A predicate, never NULL.
pub(crate) fn pred(sql: &mut Sql, e: &Expr) -> String {
    if e.is_constant() {
        return if eval::constant(e) { "TRUE".into() } else { "FALSE".into() };
    }
    match e {
        Expr::Field(_) | Expr::Literal(_) | Expr::Arith(..) => match typed(sql, e).boolean {
            Some(b) => format!("COALESCE({b} = TRUE, FALSE)"),
            None => "FALSE".into(),
        },
        Expr::Cmp(op, a, b) => {
            // `_xact_id` against a transaction id: the integer column (the same order).
            if let (Expr::Field(p), Expr::Literal(Literal::String(s))) = (a.as_ref(), b.as_ref()) {
                if let (FieldRef::XactId, Some(x)) = (classify(p), XactId::parse(s).filter(|_| s.len() == 19)) {
                    return format!("e.xact_id {} {}", sym(*op), sql.arg(Arg::Int(x.0)));
                }
            }
            let (a, b) = (typed(sql, a), typed(sql, b));
            compare(*op, &a, &b)
        }
        Expr::And(v) => format!("({})", v.iter().map(|x| pred(sql, x)).collect::<Vec<_>>().join(" AND ")),
        Expr::Or(v) => format!("({})", v.iter().map(|x| pred(sql, x)).collect::<Vec<_>>().join(" OR ")),
        Expr::Not(x) => format!("(NOT {})", pred(sql, x)),
        Expr::IsNull(x) => typed(sql, x).null,
        Expr::IsNotNull(x) => format!("(NOT {})", typed(sql, x).null),
        Expr::In(x, lits) => {
            let t = typed(sql, x);
            let mut parts = Vec::new();
            let mut group = |frag: &Option<String>, args: Vec<Arg>, sql: &mut Sql, collate: bool| {
                if let (Some(f), false) = (frag, args.is_empty()) {
                    let ps: Vec<String> = args
                        .into_iter()
                        .map(|a| {
                            let p = sql.arg(a);
                            if collate {
                                D::collate(&p)
                            } else {
                                p
                            }
                        })
                        .collect();
                    parts.push(format!("{f} IN ({})", ps.join(", ")));
                }
            };
            let nums = lits.iter().filter_map(|l| if let Literal::Number(n) = l { Some(Arg::Num(*n)) } else { None });
            group(&t.num, nums.collect(), sql, false);
            let texts =
                lits.iter().filter_map(|l| if let Literal::String(s) = l { Some(Arg::Text(s.clone())) } else { None });
            group(&t.text, texts.collect(), sql, true);
            let bools = lits.iter().filter_map(|l| if let Literal::Bool(b) = l { Some(Arg::Bool(*b)) } else { None });
            group(&t.boolean, bools.collect(), sql, false);
            any_of(parts)
        }
        Expr::Like { expr, pattern, case_insensitive } => match typed(sql, expr).text {
            Some(text) if *case_insensitive => {
                format!("COALESCE({}, FALSE)", D::like(sql, &D::lower(&text), &pattern.to_ascii_lowercase()))
            }
            Some(text) => format!("COALESCE({}, FALSE)", D::like(sql, &text, pattern)),
            None => "FALSE".into(),
        },
        Expr::Match(x, needle) => {
            if let Expr::Field(p) = x.as_ref() {
                if let FieldRef::Data(p) = classify(p) {
                    let r = D::path(sql, p);
                    let (from, cond, text) = D::strings(sql, &r);
                    let n = sql.arg(Arg::Text(needle.to_ascii_lowercase()));
                    return format!(
                        "EXISTS (SELECT 1 FROM {from} WHERE {cond} AND {})",
                        D::contains(&D::lower(&text), &n)
                    );
                }
            }
            match typed(sql, x).text {
                Some(text) => {
                    let n = sql.arg(Arg::Text(needle.to_ascii_lowercase()));
                    format!("COALESCE({}, FALSE)", D::contains(&D::lower(&text), &n))
                }
                None => "FALSE".into(),
            }
        }
        Expr::Includes(x, lit) => {
            let Expr::Field(p) = x.as_ref() else { return "FALSE".into() };
            let FieldRef::Data(p) = classify(p) else { return "FALSE".into() };
            let r = D::path(sql, p);
            let (from, el) = D::elements(sql, &r);
            let cond = match lit {
                Literal::Null => D::is_null(&el),
                l => {
                    let want = literal(sql, l);
                    compare(CmpOp::Eq, &of_ref(&el), &want)
                }
            };
            format!("EXISTS (SELECT 1 FROM {from} WHERE {} AND {cond})", D::is(&r, Kind::Array))
        }
    }
}

/// Whether every path in `e` can be expressed in this backend's SQL.
pub(crate) fn pushable(e: &Expr) -> bool {
    let mut ok = true;
    e.visit(&mut |x| {
        if let Expr::Field(p) = x {
            if let FieldRef::Data(p) = classify(p) {
                ok &= D::path_ok(p);
            }
        }
    });
    ok
}

/// One sort key's columns: (SQL, direction) each, and whether it is the `_xact_id`.
fn sort_columns(sql: &mut Sql, k: &SortKey) -> (Vec<String>, bool) {
    if let Expr::Field(p) = &k.expr {
        if classify(p) == FieldRef::XactId {
            return (vec!["e.xact_id".into()], true);
        }
    }
    let t = typed(sql, &k.expr);
    let mut rank = format!("CASE WHEN {} THEN 0", t.null);
    if let Some(b) = &t.boolean {
        rank.push_str(&format!(" WHEN {b} IS NOT NULL THEN (CASE WHEN {b} THEN 2 ELSE 1 END)"));
    }
    if let Some(n) = &t.num {
        rank.push_str(&format!(" WHEN {n} IS NOT NULL THEN 3"));
    }
    if let Some(s) = &t.text {
        rank.push_str(&format!(" WHEN {s} IS NOT NULL THEN 4"));
    }
    rank.push_str(" ELSE 5 END");
    let num = format!("CAST(COALESCE({}, 0) AS DOUBLE PRECISION)", t.num.as_deref().unwrap_or("NULL"));
    let text = match &t.text {
        Some(s) => format!("COALESCE({s}, {})", D::collate("''")),
        None => D::collate("''"),
    };
    (vec![format!("CAST({rank} AS BIGINT)"), num, text], false)
}

/// The SQL of a search and its parameters.
pub(crate) fn search_sql(q: &EventSearch) -> (String, Vec<Arg>) {
    let mut sql = Sql::default();
    let kind = sql.arg(Arg::Text(q.object.kind.as_str().to_owned()));
    let id = sql.arg(Arg::Uuid(q.object.id));
    let version = sql.arg(Arg::Int(q.version.0));
    let mut select = String::from(crate::objects::EVENT_COLS);
    // Every ordered column with its direction, sort keys first, then the position.
    let mut order: Vec<(String, bool)> = Vec::new();
    for (i, k) in q.sort.iter().enumerate() {
        let (cols, xact) = sort_columns(&mut sql, k);
        if xact {
            select.push_str(&format!(", {} AS k{i}_x", cols[0]));
        } else {
            select.push_str(&format!(", {} AS k{i}_r, {} AS k{i}_n, {} AS k{i}_t", cols[0], cols[1], cols[2]));
        }
        order.extend(cols.into_iter().map(|c| (c, k.desc)));
    }
    order.push(("e.xact_id".into(), true));
    order.push(("e.row_id".into(), true));
    let mut text = format!(
        "SELECT {select} FROM events e WHERE e.object_kind = {kind} AND e.object_id = {id} AND e.xact_id <= {version} \
         AND NOT e.deleted AND NOT e.is_comment"
    );
    if let Some(f) = &q.filter {
        text.push_str(&format!(" AND {}", pred(&mut sql, f)));
    }
    if let Some(after) = &q.after {
        let mut values: Vec<String> = Vec::new();
        for v in &after.keys {
            match v {
                SortValue::Xact(x) => values.push(sql.arg(Arg::Int(*x))),
                SortValue::Typed(r, n, t) => {
                    values.push(sql.arg(Arg::Int(*r)));
                    values.push(sql.arg(Arg::Num(*n)));
                    let p = sql.arg(Arg::Text(t.clone()));
                    values.push(D::collate(&p));
                }
            }
        }
        values.push(sql.arg(Arg::Int(after.xact_id.0)));
        values.push(D::collate(&sql.arg(Arg::Text(after.row_id.clone()))));
        if q.sort.is_empty() {
            // The log's natural order: one row-value comparison the index serves.
            text.push_str(&format!(" AND (e.xact_id, e.row_id) < ({}, {})", values[0], values[1]));
        } else {
            let mut alternatives = Vec::new();
            for j in 0..order.len().min(values.len()) {
                let mut conj: Vec<String> = (0..j).map(|i| format!("{} = {}", order[i].0, values[i])).collect();
                conj.push(format!("{} {} {}", order[j].0, if order[j].1 { "<" } else { ">" }, values[j]));
                alternatives.push(conj.join(" AND "));
            }
            text.push_str(&format!(" AND (({}))", alternatives.join(") OR (")));
        }
    }
    text.push_str(&format!(
        " AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind AND n.object_id = e.object_id \
         AND n.row_id = e.row_id AND n.xact_id > e.xact_id AND n.xact_id <= {version})"
    ));
    let by: Vec<String> = order.iter().map(|(c, desc)| format!("{c} {}", if *desc { "DESC" } else { "ASC" })).collect();
    let limit = sql.arg(Arg::Int(q.limit as i64));
    text.push_str(&format!(" ORDER BY {} LIMIT {limit}", by.join(", ")));
    compact(&text, sql.args)
}

/// The SQL counting the rows a search would find (its filter at its version, every
/// page at once; sort, position and limit do not matter), only rows whose newest
/// version was written after `since` when given (the `events_by_xact` index bounds
/// that scan), and its parameters.
pub(crate) fn count_sql(q: &EventSearch, since: Option<XactId>) -> (String, Vec<Arg>) {
    let mut sql = Sql::default();
    let kind = sql.arg(Arg::Text(q.object.kind.as_str().to_owned()));
    let id = sql.arg(Arg::Uuid(q.object.id));
    let version = sql.arg(Arg::Int(q.version.0));
    let mut text = format!(
        "SELECT COUNT(*) FROM events e WHERE e.object_kind = {kind} AND e.object_id = {id} AND e.xact_id <= {version} \
         AND NOT e.deleted AND NOT e.is_comment"
    );
    if let Some(s) = since {
        let s = sql.arg(Arg::Int(s.0));
        text.push_str(&format!(" AND e.xact_id > {s}"));
    }
    if let Some(f) = &q.filter {
        text.push_str(&format!(" AND {}", pred(&mut sql, f)));
    }
    text.push_str(&format!(
        " AND NOT EXISTS (SELECT 1 FROM events n WHERE n.object_kind = e.object_kind AND n.object_id = e.object_id \
         AND n.row_id = e.row_id AND n.xact_id > e.xact_id AND n.xact_id <= {version})"
    ));
    compact(&text, sql.args)
}

/// Counts, see [`count_sql`].
pub(crate) async fn count<'c, E>(conn: E, q: &EventSearch, since: Option<XactId>) -> StoreResult<u64>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let (text, args) = count_sql(q, since);
    let mut query = sqlx::query_scalar::<_, i64>(&text);
    for a in args {
        query = match a {
            Arg::Text(s) => query.bind(s),
            Arg::Num(n) => query.bind(n),
            Arg::Int(i) => query.bind(i),
            Arg::Bool(b) => query.bind(b),
            Arg::Uuid(u) => query.bind(u),
        };
    }
    let n = query.fetch_one(conn).await.map_err(crate::db_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Drops the parameters the text does not use (a comparison of values that can never
/// share a type reads neither), renumbering the rest: PostgreSQL refuses to bind a
/// parameter it cannot type. Every `$N` in the text is a placeholder (values, JSON
/// paths included, are always bound, never written into the text).
fn compact(text: &str, args: Vec<Arg>) -> (String, Vec<Arg>) {
    let mut used = vec![false; args.len()];
    let mut pieces: Vec<Result<usize, &str>> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        let digits = rest[i + 1..].bytes().take_while(u8::is_ascii_digit).count();
        match rest[i + 1..i + 1 + digits].parse::<usize>() {
            Ok(n) if n >= 1 && n <= args.len() => {
                pieces.push(Err(&rest[..i]));
                pieces.push(Ok(n - 1));
                used[n - 1] = true;
            }
            _ => pieces.push(Err(&rest[..=i + digits])),
        }
        rest = &rest[i + 1 + digits..];
    }
    pieces.push(Err(rest));
    let mut renumber = vec![0usize; args.len()];
    let mut kept = Vec::new();
    for (i, a) in args.into_iter().enumerate() {
        if used[i] {
            kept.push(a);
            renumber[i] = kept.len();
        }
    }
    let out = pieces
        .into_iter()
        .map(|p| match p {
            Ok(i) => format!("${}", renumber[i]),
            Err(s) => s.to_owned(),
        })
        .collect();
    (out, kept)
}

/// Runs a search on `conn`.
pub(crate) async fn search<'c, E>(conn: E, q: &EventSearch) -> StoreResult<Vec<FoundEvent>>
where
    E: sqlx::Executor<'c, Database = Db>,
{
    let (text, args) = search_sql(q);
    let mut query = sqlx::query(&text);
    for a in args {
        query = match a {
            Arg::Text(s) => query.bind(s),
            Arg::Num(n) => query.bind(n),
            Arg::Int(i) => query.bind(i),
            Arg::Bool(b) => query.bind(b),
            Arg::Uuid(u) => query.bind(u),
        };
    }
    let rows: Vec<DbRow> = query.fetch_all(conn).await.map_err(crate::db_err)?;
    rows.iter()
        .map(|r| {
            let event = crate::objects::event(r)?;
            let mut keys = Vec::with_capacity(q.sort.len());
            for (i, k) in q.sort.iter().enumerate() {
                let xact = matches!(&k.expr, Expr::Field(p) if classify(p) == FieldRef::XactId);
                keys.push(if xact {
                    SortValue::Xact(r.try_get(format!("k{i}_x").as_str()).map_err(crate::db_err)?)
                } else {
                    SortValue::Typed(
                        r.try_get(format!("k{i}_r").as_str()).map_err(crate::db_err)?,
                        r.try_get(format!("k{i}_n").as_str()).map_err(crate::db_err)?,
                        r.try_get(format!("k{i}_t").as_str()).map_err(crate::db_err)?,
                    )
                });
            }
            Ok(FoundEvent { event, keys })
        })
        .collect()
}
