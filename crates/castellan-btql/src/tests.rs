use crate::ast::*;
use crate::{eval, parse, parse_str, print};
use serde_json::{json, Map, Value};

const ID: &str = "4f0c7d6e-0000-4000-8000-000000000001";

fn f(path: &str) -> Expr {
    Expr::field(path.split('.'))
}

fn s(v: &str) -> Expr {
    Expr::Literal(Literal::String(v.into()))
}

fn n(v: f64) -> Expr {
    Expr::Literal(Literal::Number(v))
}

fn row(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[test]
fn the_three_forms_parse_into_one_plan() {
    let text = format!(
        "select: * | from: project_logs('{ID}') | filter: metadata.model = 'gpt-4o' and scores.accuracy > 0.5 \
         | sort: created desc | limit: 10"
    );
    let sql = format!(
        "SELECT * FROM project_logs('{ID}') WHERE metadata.model = 'gpt-4o' AND scores.accuracy > 0.5 \
         ORDER BY created DESC LIMIT 10"
    );
    let body = json!({
        "select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": ["project_logs"]}, "args": [{"op": "literal", "value": ID}]},
        "filter": {"op": "and", "children": [
            {"op": "eq", "left": {"op": "ident", "name": ["metadata", "model"]}, "right": {"op": "literal", "value": "gpt-4o"}},
            {"op": "gt", "left": {"op": "ident", "name": ["scores", "accuracy"]}, "right": {"op": "literal", "value": 0.5}},
        ]},
        "sort": [{"expr": {"op": "ident", "name": ["created"]}, "dir": "desc"}],
        "limit": 10,
    });
    let want = Query {
        select: Select::Star,
        from: From { source: Source::ProjectLogs, id: ID.into() },
        filter: Some(Expr::And(vec![
            Expr::Cmp(CmpOp::Eq, Box::new(f("metadata.model")), Box::new(s("gpt-4o"))),
            Expr::Cmp(CmpOp::Gt, Box::new(f("scores.accuracy")), Box::new(n(0.5))),
        ])),
        sort: vec![SortKey { expr: f("created"), desc: true }],
        limit: Some(10),
        cursor: None,
    };
    assert_eq!(parse_str(&text).unwrap(), want);
    assert_eq!(parse_str(&sql).unwrap(), want);
    assert_eq!(parse(&body, "query").unwrap(), want);
    assert_eq!(parse_str(&print::query(&want)).unwrap(), want);
}

#[test]
fn every_operator_parses_in_the_text_syntax() {
    let q = |filter: &str| parse_str(&format!("from: experiment('{ID}') | filter: {filter}")).unwrap().filter.unwrap();
    assert_eq!(q("id != 'a'"), Expr::Cmp(CmpOp::Ne, Box::new(f("id")), Box::new(s("a"))));
    assert_eq!(q("id <> 'a'"), q("id != 'a'"));
    assert_eq!(q("error IS NULL"), Expr::IsNull(Box::new(f("error"))));
    assert_eq!(q("error = null"), Expr::IsNull(Box::new(f("error"))));
    assert_eq!(q("error != null"), Expr::IsNotNull(Box::new(f("error"))));
    assert_eq!(q("tags includes 'a'"), Expr::Includes(Box::new(f("tags")), Literal::String("a".into())));
    assert_eq!(
        q("input NOT ILIKE '%x%'"),
        Expr::Not(Box::new(Expr::Like { expr: Box::new(f("input")), pattern: "%x%".into(), case_insensitive: true }))
    );
    assert_eq!(q("id IN ('a', 'b')"), q("id in ['a', 'b']"));
    assert_eq!(q("input MATCH 'hello'"), Expr::Match(Box::new(f("input")), "hello".into()));
    assert_eq!(
        q("metrics.end - metrics.start >= 2 * 0.5"),
        Expr::Cmp(
            CmpOp::Ge,
            Box::new(Expr::Arith(ArithOp::Sub, Box::new(f("metrics.end")), Box::new(f("metrics.start")))),
            Box::new(Expr::Arith(ArithOp::Mul, Box::new(n(2.0)), Box::new(n(0.5)))),
        )
    );
    assert_eq!(
        q("metadata.\"a key\".\"0\" = -1"),
        Expr::Cmp(CmpOp::Eq, Box::new(Expr::field(["metadata", "a key", "0"])), Box::new(n(-1.0)))
    );
    assert_eq!(q("metadata.0 = 1"), Expr::Cmp(CmpOp::Eq, Box::new(Expr::field(["metadata", "0"])), Box::new(n(1.0))));
    assert_eq!(
        q("NOT metadata.b OR input.d AND output.f").to_string_for_test(),
        "(NOT metadata.b) OR (input.d AND output.f)"
    );
}

trait ForTest {
    fn to_string_for_test(&self) -> String;
}

impl ForTest for Expr {
    fn to_string_for_test(&self) -> String {
        print::expr(self)
    }
}

#[test]
fn errors_say_where_and_what() {
    let err = |src: &str| parse_str(src).unwrap_err().to_string();
    assert_eq!(
        err("from: project_logs('x') | filter: metadata.a = "),
        "at 1:48: expected an expression, found the end of the query"
    );
    assert_eq!(
        err("from: project_logs('x') | filter: nope.a = 1").split(';').next().unwrap(),
        "at 1:35: unknown field `nope` for project_logs rows"
    );
    assert!(err("from: project_logs('x') |\n filter: id.x = 1").starts_with("at 2:10: `id` is a scalar"));
    assert!(err("from: nothing('x')").starts_with("at 1:7: unknown source `nothing`"));
    assert!(err("SELECT count(*) FROM project_logs('x')").starts_with("at 1:8: unknown function `count`"));
    assert!(err("select: * | filter: id = 'a'").contains("no `from:`"));
    assert!(err("from: dataset('x') | filter: experiment_id = 'a'").contains("unknown field `experiment_id`"));
    assert!(err("from: dataset('x') | filter: input = 'unterminated").starts_with("at 1:38: unterminated string"));
    assert!(err("from: dataset('x') | limit: 1.5").starts_with("at 1:29: `limit` must be a whole number"));
    let json_err = |v: Value| parse(&v, "query").unwrap_err().to_string();
    let from = json!({"op": "function", "name": {"op": "ident", "name": ["dataset"]}, "args": [{"op": "literal", "value": "x"}]});
    assert_eq!(
        json_err(json!({"from": from, "filter": {"op": "and", "children": [{"op": "eq", "left": {"op": "ident", "name": ["input"]}, "right": {"op": "literal", "value": 1}}, {"op": "frob"}]}})).split(';').next().unwrap(),
        "at `query.filter.children[1]`: unknown operator `frob`"
    );
    assert!(json_err(json!({"from": from, "filter": {"op": "eq", "left": {"op": "ident", "name": ["bogus"]}, "right": {"op": "literal", "value": 1}}}))
        .starts_with("at `query.filter.left`: unknown field `bogus`"));
    assert!(json_err(json!({"from": from, "fliter": {}})).starts_with("at `query.fliter`: unknown key `fliter`"));
    assert!(json_err(json!({"from": from, "limit": "ten"})).starts_with("at `query.limit`"));
    assert!(json_err(json!({"from": from, "filter": "input = "}))
        .starts_with("at `query.filter`: in the expression text, at 1:9"));
}

#[test]
fn the_sdks_filters_parse() {
    // trace.get_spans(): root_span_id, scorer exclusion, a duration and a false literal.
    let body = json!({
        "select": [{"op": "star"}],
        "from": {"op": "function", "name": {"op": "ident", "name": ["experiment"]}, "args": [{"op": "literal", "value": ID}]},
        "cursor": null, "limit": 1000,
        "filter": {"op": "and", "children": [
            {"op": "eq", "left": {"op": "ident", "name": ["root_span_id"]}, "right": {"op": "literal", "value": "r"}},
            {"op": "or", "children": [
                {"op": "isnull", "expr": {"op": "ident", "name": ["span_attributes", "purpose"]}},
                {"op": "ne", "left": {"op": "ident", "name": ["span_attributes", "purpose"]}, "right": {"op": "literal", "value": "scorer"}},
            ]},
            {"op": "in", "left": {"op": "ident", "name": ["span_attributes", "type"]}, "right": {"op": "literal", "value": ["llm"]}},
            {"op": "le", "left": {"op": "sub", "left": {"op": "ident", "name": ["metrics", "end"]}, "right": {"op": "ident", "name": ["metrics", "start"]}}, "right": {"op": "literal", "value": 5}},
            {"op": "literal", "value": false},
            {"op": "and", "left": {"op": "ne", "left": {"op": "ident", "name": ["span_parents"]}, "right": {"op": "literal", "value": null}}, "right": {"op": "literal", "value": true}},
        ]},
    });
    let q = parse(&body, "query").unwrap();
    assert_eq!(q.from.source, Source::Experiment);
    let printed = print::query(&q);
    assert_eq!(parse_str(&printed).unwrap(), q, "{printed}");
    assert!(printed.contains("span_parents IS NOT NULL"), "{printed}");
}

#[test]
fn comparisons_hold_only_between_values_of_one_type() {
    let r = row(json!({"id": "a", "scores": {"x": 1, "s": "1"}, "metadata": {"b": true, "n": null}}));
    let t = |src: &str| {
        let q = parse_str(&format!("from: experiment('{ID}') | filter: {src}")).unwrap();
        eval::test(&q.filter.unwrap(), &r)
    };
    assert!(t("scores.x = 1"));
    assert!(t("scores.x = 1.0"));
    assert!(!t("scores.x = '1'"));
    assert!(!t("scores.s = 1"));
    assert!(!t("scores.missing != 1"), "a missing value compares with nothing");
    assert!(!t("metadata.n != 'x'"));
    assert!(t("metadata.n IS NULL") && t("metadata.gone IS NULL") && t("scores.x IS NOT NULL"));
    assert!(t("metadata.b = true") && t("metadata.b") && !t("NOT metadata.b"));
    assert!(t("scores.x IN [0, 1]") && !t("scores.x IN ['1']"));
    assert!(t("scores.x + 1 = 2") && !t("scores.x / 0 = 0") && t("(scores.x / 0) IS NULL"));
    assert!(t("id < 'b'") && t("is_root"));
    assert!(!t("scores.x.deeper = 1"), "a path through a number is null");
}

#[test]
fn like_match_and_includes() {
    assert!(eval::like("hello world", "%o w%"));
    assert!(eval::like("hello", "h_llo") && !eval::like("hello", "h_lo"));
    assert!(eval::like("100%", "100\\%") && !eval::like("1000", "100\\%"));
    assert!(eval::like("", "%") && !eval::like("a", ""));
    assert!(eval::like("aXbXc", "a%b%c") && !eval::like("abc", "a%b%d"));
    assert!(eval::like("é", "_"), "`_` is one character, not one byte");
    let r = row(json!({"input": {"messages": [{"content": "Hello There"}]}, "tags": ["a", 1, null], "output": "ÉTÉ"}));
    let t = |src: &str| {
        let q = parse_str(&format!("from: experiment('{ID}') | filter: {src}")).unwrap();
        eval::test(&q.filter.unwrap(), &r)
    };
    assert!(t("input MATCH 'there'") && !t("input MATCH 'nowhere'"));
    assert!(t("output ILIKE 'Ét%'") && !t("output ILIKE 'ét%'"), "ILIKE folds ASCII only");
    assert!(t("tags INCLUDES 'a'") && t("tags INCLUDES 1") && t("tags INCLUDES null") && !t("tags INCLUDES 'b'"));
    assert!(!t("input INCLUDES 'a'"));
}
