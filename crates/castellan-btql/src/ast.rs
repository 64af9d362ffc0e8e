//! The plan every form of a query parses into.

use std::fmt;

/// The event log a query reads (`from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// `experiment('<id>')`: an experiment's spans.
    Experiment,
    /// `dataset('<id>')`: a dataset's records.
    Dataset,
    /// `project_logs('<id>')`: a project's logs.
    ProjectLogs,
    /// `playground_logs('<id>')` (or `prompt_session`): a playground's logs.
    PlaygroundLogs,
}

impl Source {
    /// Every source, under its canonical name.
    pub const ALL: [Source; 4] = [Source::Experiment, Source::Dataset, Source::ProjectLogs, Source::PlaygroundLogs];

    /// The canonical name.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Experiment => "experiment",
            Source::Dataset => "dataset",
            Source::ProjectLogs => "project_logs",
            Source::PlaygroundLogs => "playground_logs",
        }
    }

    /// Parses a name (`prompt_session` is another name of playground logs).
    pub fn parse(s: &str) -> Option<Source> {
        match s {
            "prompt_session" => Some(Source::PlaygroundLogs),
            _ => Source::ALL.into_iter().find(|x| x.name() == s),
        }
    }
}

/// `from`: a source and the id of its object (a UUID, checked when the query runs).
#[derive(Debug, Clone, PartialEq)]
pub struct From {
    /// Which kind of log.
    pub source: Source,
    /// The experiment, dataset, project or playground id, as written.
    pub id: String,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number (JSON numbers compare as doubles).
    Number(f64),
    /// A string.
    String(String),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=` (`eq`).
    Eq,
    /// `!=` (`ne`).
    Ne,
    /// `<` (`lt`).
    Lt,
    /// `<=` (`le`).
    Le,
    /// `>` (`gt`).
    Gt,
    /// `>=` (`ge`).
    Ge,
}

impl CmpOp {
    /// Every operator.
    pub const ALL: [CmpOp; 6] = [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];

    /// The name in the JSON form.
    pub const fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }

    /// The symbol in the text and SQL forms.
    pub const fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `ordering` (left against right) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }
}

/// An arithmetic operator (on numbers; anything else gives null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+` (`add`).
    Add,
    /// `-` (`sub`).
    Sub,
    /// `*` (`mul`).
    Mul,
    /// `/` (`div`); division by zero gives null.
    Div,
}

impl ArithOp {
    /// Every operator.
    pub const ALL: [ArithOp; 4] = [ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div];

    /// The name in the JSON form.
    pub const fn name(self) -> &'static str {
        match self {
            ArithOp::Add => "add",
            ArithOp::Sub => "sub",
            ArithOp::Mul => "mul",
            ArithOp::Div => "div",
        }
    }

    /// The symbol in the text and SQL forms.
    pub const fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// An expression: a value (field, literal, arithmetic) or a predicate.
///
/// Semantics (the same in SQL and in memory, see `eval`): a field is the JSON value at
/// its path, or null when any step is missing or not an object; a comparison holds
/// only between two numbers, two strings (by code point) or two booleans, so
/// comparing with null or across types is false (use `IS NULL`); `x = null` and
/// `x != null` are parsed as `x IS NULL` and `x IS NOT NULL`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field path: a top-level field and keys below it (`metadata.a.b`).
    Field(Vec<String>),
    /// A literal.
    Literal(Literal),
    /// A comparison.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Arithmetic.
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// All of (two or more).
    And(Vec<Expr>),
    /// Any of (two or more).
    Or(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// The value is null or missing.
    IsNull(Box<Expr>),
    /// The value is neither null nor missing.
    IsNotNull(Box<Expr>),
    /// Equal to one of the literals.
    In(Box<Expr>, Vec<Literal>),
    /// A string matching a SQL `LIKE` pattern (`%` any run, `_` one character, `\`
    /// escapes); `ILIKE` ignores ASCII case.
    Like {
        /// The value.
        expr: Box<Expr>,
        /// The pattern.
        pattern: String,
        /// `ILIKE`.
        case_insensitive: bool,
    },
    /// Full-text-ish search: some string in the value (the value itself, or any
    /// string inside an array or object) contains the text, ignoring ASCII case.
    Match(Box<Expr>, String),
    /// The value is an array holding an element equal to the literal.
    Includes(Box<Expr>, Literal),
}

impl Expr {
    /// A field from its path segments.
    pub fn field<S: Into<String>>(path: impl IntoIterator<Item = S>) -> Expr {
        Expr::Field(path.into_iter().map(Into::into).collect())
    }

    /// Whether the expression reads no field (it can be evaluated once).
    pub fn is_constant(&self) -> bool {
        let mut constant = true;
        self.visit(&mut |e| {
            if matches!(e, Expr::Field(_)) {
                constant = false;
            }
        });
        constant
    }

    /// Calls `f` on this expression and every expression inside it.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Field(_) | Expr::Literal(_) => {}
            Expr::Cmp(_, a, b) | Expr::Arith(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.visit(f)),
            Expr::Not(e)
            | Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::In(e, _)
            | Expr::Like { expr: e, .. }
            | Expr::Match(e, _)
            | Expr::Includes(e, _) => e.visit(f),
        }
    }

    /// The expression with every field rewritten by `f` (which may turn it into a
    /// literal: the constant fields of a log).
    pub fn map_fields(self, f: &impl Fn(Vec<String>) -> Expr) -> Expr {
        let m = |e: Box<Expr>| Box::new(e.map_fields(f));
        match self {
            Expr::Field(p) => f(p),
            Expr::Literal(l) => Expr::Literal(l),
            Expr::Cmp(op, a, b) => Expr::Cmp(op, m(a), m(b)),
            Expr::Arith(op, a, b) => Expr::Arith(op, m(a), m(b)),
            Expr::And(v) => Expr::And(v.into_iter().map(|e| e.map_fields(f)).collect()),
            Expr::Or(v) => Expr::Or(v.into_iter().map(|e| e.map_fields(f)).collect()),
            Expr::Not(e) => Expr::Not(m(e)),
            Expr::IsNull(e) => Expr::IsNull(m(e)),
            Expr::IsNotNull(e) => Expr::IsNotNull(m(e)),
            Expr::In(e, l) => Expr::In(m(e), l),
            Expr::Like { expr, pattern, case_insensitive } => Expr::Like { expr: m(expr), pattern, case_insensitive },
            Expr::Match(e, t) => Expr::Match(m(e), t),
            Expr::Includes(e, l) => Expr::Includes(m(e), l),
        }
    }

    /// The conjuncts of a filter: the children of a top-level `AND`, else itself.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::And(v) => v.into_iter().flat_map(Expr::conjuncts).collect(),
            e => vec![e],
        }
    }

    /// `AND` of `parts`: `None` for none, the part itself for one.
    pub fn all(mut parts: Vec<Expr>) -> Option<Expr> {
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Expr::And(parts)),
        }
    }
}

/// One output column of `select`.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// What it computes.
    pub expr: Expr,
    /// The key it gets in each answered row.
    pub alias: String,
}

/// `select`.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `*`: whole rows, as `fetch` answers them.
    Star,
    /// These columns.
    Columns(Vec<Projection>),
}

/// One key of `sort`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// What to sort by.
    pub expr: Expr,
    /// Descending.
    pub desc: bool,
}

/// A whole query: the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The columns.
    pub select: Select,
    /// The log.
    pub from: From,
    /// Which rows.
    pub filter: Option<Expr>,
    /// In which order (ties, and no sort at all: newest transaction first).
    pub sort: Vec<SortKey>,
    /// At most this many rows.
    pub limit: Option<u64>,
    /// Where to continue: a previous answer's `cursor`.
    pub cursor: Option<String>,
}

/// Where in a query something is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// Line and column (1-based, in characters) of the text or SQL form.
    Text {
        /// Line.
        line: usize,
        /// Column.
        col: usize,
    },
    /// A path into the JSON form (`query.filter.children[1].left`).
    Json(String),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Text { line, col } => write!(f, "{line}:{col}"),
            Position::Json(p) => write!(f, "`{p}`"),
        }
    }
}

/// The fields a query names, each with where it is written (checked against the
/// source once the whole query is read).
pub type FieldUses = Vec<(Vec<String>, Position)>;

/// A query that does not parse, or names what does not exist: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Where.
    pub at: Position,
    /// What (lowercase, user input in backticks).
    pub message: String,
}

impl Error {
    /// An error at `at`.
    pub fn new(at: Position, message: impl Into<String>) -> Error {
        Error { at, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.at, self.message)
    }
}

impl std::error::Error for Error {}
