//! Property tests of the parsers: a random plan, printed in the text form (or in the
//! JSON form), parses back to the same plan.

use castellan_btql::fields::{JSON_FIELDS, ROW_FIELDS};
use castellan_btql::*;
use proptest::prelude::*;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,6}",
        Just("and".to_owned()),
        Just("select".to_owned()),
        Just("0".to_owned()),
        Just(String::new()),
        "[ -~é\n]{0,6}",
    ]
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        prop::sample::select(ROW_FIELDS.to_vec()).prop_map(|f| vec![f.to_owned()]),
        (prop::sample::select(JSON_FIELDS.to_vec()), prop::collection::vec(key(), 0..3)).prop_map(|(f, rest)| {
            let mut v = vec![f.to_owned()];
            v.extend(rest);
            v
        }),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        (-1000i32..1000).prop_map(f64::from),
        (-100_000i32..100_000).prop_map(|i| f64::from(i) / 1000.0),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z '%_|\\\\\"-]{0,8}", any::<String>()]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        number().prop_map(Literal::Number),
        text().prop_map(Literal::String),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![path().prop_map(Expr::Field), literal().prop_map(Expr::Literal)];
    leaf.prop_recursive(4, 32, 4, |inner| {
        let b = |e: Expr| Box::new(e);
        prop_oneof![
            (prop::sample::select(CmpOp::ALL.to_vec()), inner.clone(), inner.clone())
                .prop_filter("`= null` parses as IS NULL", |(op, l, r)| {
                    let null = |e: &Expr| matches!(e, Expr::Literal(Literal::Null));
                    !matches!(op, CmpOp::Eq | CmpOp::Ne) || null(l) == null(r)
                })
                .prop_map(move |(op, l, r)| Expr::Cmp(op, b(l), b(r))),
            (prop::sample::select(ArithOp::ALL.to_vec()), inner.clone(), inner.clone())
                .prop_map(move |(op, l, r)| Expr::Arith(op, b(l), b(r))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.clone().prop_map(move |e| Expr::Not(b(e))),
            inner.clone().prop_map(move |e| Expr::IsNull(b(e))),
            inner.clone().prop_map(move |e| Expr::IsNotNull(b(e))),
            (inner.clone(), prop::collection::vec(literal(), 1..4)).prop_map(move |(e, l)| Expr::In(b(e), l)),
            (
                inner.clone(),
                text().prop_filter("no lone escape at the end", |p| {
                    p.chars().rev().take_while(|c| *c == '\\').count() % 2 == 0
                }),
                any::<bool>()
            )
                .prop_map(move |(e, pattern, ci)| Expr::Like { expr: b(e), pattern, case_insensitive: ci }),
            (inner.clone(), text()).prop_map(move |(e, t)| Expr::Match(b(e), t)),
            (inner, literal()).prop_map(move |(e, l)| Expr::Includes(b(e), l)),
        ]
    })
}

fn query() -> impl Strategy<Value = Query> {
    let select = prop_oneof![
        Just(Select::Star),
        prop::collection::vec((expr(), key()).prop_map(|(expr, alias)| Projection { expr, alias }), 1..3)
            .prop_map(Select::Columns),
    ];
    let from = (prop::sample::select(Source::ALL.to_vec()), text()).prop_map(|(source, id)| From { source, id });
    let sort = prop::collection::vec((expr(), any::<bool>()).prop_map(|(expr, desc)| SortKey { expr, desc }), 0..3);
    (select, from, prop::option::of(expr()), sort, prop::option::of(0u64..100_000), prop::option::of(text()))
        .prop_map(|(select, from, filter, sort, limit, cursor)| Query { select, from, filter, sort, limit, cursor })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_printed_query_parses_back_to_the_same_plan(q in query()) {
        let printed = print::query(&q);
        let parsed = parse_str(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&q), "printed: {}", printed);
    }

    #[test]
    fn a_filter_in_the_json_form_parses_back_to_the_same_plan(e in expr()) {
        let body = serde_json::json!({
            "from": {"op": "function", "name": {"op": "ident", "name": ["experiment"]}, "args": [{"op": "literal", "value": "x"}]},
            "filter": json::expr_json(&e),
        });
        let parsed = parse(&body, "query").map(|q| q.filter);
        prop_assert_eq!(parsed, Ok(Some(e)));
    }
}
