//! The expression language's printer and parser agree: printing a tree and
//! parsing the text back gives the same tree, and printing is a fixed point.

use prism::diagnostics::Span;
use prism::frontend::ast::{Arg, Expr, ExprKind, Ident, InfixOp, Program, Stmt, StmtKind};
use prism::frontend::parser::{parse_expr, parse_program};
use prism::frontend::snippet::Snippet;
use proptest::prelude::*;

fn program(text: &str) -> Program {
    parse_program(&Snippet::detached(text))
        .unwrap_or_else(|d| panic!("{text:?} does not parse: [{}] {}", d.code, d.message))
}

fn expr(text: &str) -> Expr {
    parse_expr(&Snippet::detached(text))
        .unwrap_or_else(|d| panic!("{text:?} does not parse: [{}] {}", d.code, d.message))
}

/// Print, parse back, compare; print again, compare the text.
fn assert_program_round_trips(p: &Program) {
    let printed = p.to_string();
    let back = program(&printed);
    assert_eq!(
        back.without_spans(),
        p.without_spans(),
        "printed as:\n{printed}"
    );
    assert_eq!(back.to_string(), printed, "printing is not a fixed point");
}

fn assert_expr_round_trips(e: &Expr) {
    let printed = e.to_string();
    let back = expr(&printed);
    assert_eq!(
        back.without_spans(),
        e.without_spans(),
        "printed as: {printed}"
    );
    assert_eq!(back.to_string(), printed, "printing is not a fixed point");
}

// ------------------------------------------------------------ hand-written

const PROGRAMS: &[&str] = &[
    "matmul(rms_norm(x), w)",
    "let h = rms_norm(x)\nout = matmul(h, w_up) * matmul(h, w_gate)\n",
    "silu(x @ w_gate) * (x @ w_up)",
    "softmax(q @ kt, -1) @ v",
    "softmax(rms_norm(q) @ kt, -1) @ v",
    "let qg = reshape(q, [b, 8, 4, 128])   # grouped\n\
     let p = softmax(qg @ transpose(k, 2, 3) / sqrt(128), -1)\n\
     out = reshape(p @ v, [b, 32, 128])",
    "x @ w + (x @ a) @ b",
    "rms_norm(x + alpha * (rms_norm(h) + x))",
    "rms_norm(x, g, eps=1e-5)",
    "sum(x, axis=-1, keepdim=true) / mean(x, -2,)",
    "permute(x, [0, 2, 1]) + reshape(y, [])",
    "- -x + -(-(y)) - ---z",
    "a - (b - c)",
    "a - b - c",
    "a / (b * c)",
    "a / b * c",
    "-x @ y",
    "-(x @ y)",
    "x * -y - -(a + b)",
    "1e-6 * x + 0.5 * y + 128 + 1.0 + 2.5e300 + 5e-324",
    "y = x; z = exp(x)\n\n  # a comment\nlet t = y",
    "f(a=1, b=[c, [d]], e)",
];

#[test]
fn representative_programs_round_trip() {
    for text in PROGRAMS {
        let p = program(text);
        assert_program_round_trips(&p);
        for s in &p.stmts {
            assert_expr_round_trips(&s.expr);
        }
    }
}

#[test]
fn printing_puts_in_only_the_parentheses_needed() {
    for (text, printed) in [
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("a / (b * c)", "a / (b * c)"),
        ("(a / b) * c", "a / b * c"),
        ("a + (b * c)", "a + b * c"),
        ("(a + b) * c", "(a + b) * c"),
        ("-x @ y", "-x @ y"),
        ("-(x @ y)", "-(x @ y)"),
        ("(-x) @ y", "-x @ y"),
        ("- - x", "--x"),
        ("-(-(x))", "--x"),
        ("((x))", "x"),
        ("f(a = 1 , [ 2 ])", "f(a=1, [2])"),
        ("1e-6", "1e-6"),
        ("0.5", "0.5"),
        ("128", "128"),
        ("1_024", "1024"),
        ("2.0", "2.0"),
        ("1E3", "1000.0"),
        (".5", "0.5"),
    ] {
        assert_eq!(expr(text).to_string(), printed, "printing {text:?}");
    }
}

#[test]
fn numbers_keep_whether_they_were_integers() {
    let kinds = |text: &str| match expr(text).kind {
        ExprKind::Num(v, is_int) => (v, is_int),
        k => panic!("{text:?} parsed as {k:?}"),
    };
    assert_eq!(kinds("128"), (128.0, true));
    assert_eq!(kinds("128.0"), (128.0, false));
    assert_eq!(kinds("1e2"), (100.0, false));
    assert_eq!(kinds("9007199254740992"), (9_007_199_254_740_992.0, true));
    assert_eq!(kinds("1e-6"), (1e-6, false));
    assert!(parse_expr(&Snippet::detached("9007199254740993")).is_err());
    assert!(parse_expr(&Snippet::detached("1e309")).is_err());
}

#[test]
fn the_programs_of_the_bundled_prism_toml_round_trip() {
    let spec = prism::frontend::embedded().unwrap_or_else(|r| panic!("{r}"));
    assert!(!spec.workloads.is_empty());
    let table: toml::Table = toml::from_str(prism::frontend::EMBEDDED_PRISM_TOML).unwrap();
    let workloads = table["workload"].as_table().unwrap();
    assert_eq!(workloads.len(), spec.workloads.len());
    for (name, w) in workloads {
        let text = w["program"].as_str().unwrap();
        let p = program(text);
        assert_program_round_trips(&p);
        for (_, v) in w
            .get("init")
            .and_then(|i| i.as_table())
            .into_iter()
            .flatten()
        {
            assert_expr_round_trips(&expr(v.as_str().unwrap()));
        }
        assert!(spec.workload(name).is_some(), "workload {name} missing");
    }
}

#[test]
fn the_bundled_prism_toml_parses() {
    let spec = prism::frontend::embedded().unwrap_or_else(|r| panic!("{r}"));
    let names: Vec<&str> = spec.workloads.iter().map(|w| w.name.as_str()).collect();
    for want in [
        "rms_norm",
        "rmsnorm_mlp",
        "swiglu",
        "attention",
        "qk_norm_attention",
    ] {
        assert!(names.contains(&want), "no workload {want} in {names:?}");
    }
    for w in &spec.workloads {
        assert!(!w.points.is_empty(), "{} has no points", w.name);
        assert!(!w.graph.outputs.is_empty(), "{} has no outputs", w.name);
    }
}

// --------------------------------------------------------------- too deep

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 10_000;
    let cases = [
        format!("{}x{}", "(".repeat(n), ")".repeat(n)),
        format!("{}x", "-".repeat(n)),
        format!("{}x{}", "exp(".repeat(n), ")".repeat(n)),
        format!("{}x{}", "[".repeat(n), "]".repeat(n)),
        format!("{}x", "x + ".repeat(n)),
        format!("{}x", "x * ".repeat(n)),
        format!("x{}", " - (x".repeat(n) + &")".repeat(n)),
        // Unclosed: the depth limit is met before the end of the input.
        "(".repeat(n),
    ];
    for text in &cases {
        let head = &text[..20];
        let d = parse_expr(&Snippet::detached(text)).expect_err(head);
        assert_eq!(d.code, "too-deep", "{head}...: [{}] {}", d.code, d.message);
        assert!(d.hint.is_some());
        let d = parse_program(&Snippet::detached(text)).expect_err(head);
        assert_eq!(d.code, "too-deep", "{head}...: [{}] {}", d.code, d.message);
    }
}

#[test]
fn deep_nesting_in_a_file_is_reported_in_place() {
    let source = format!(
        "[workload.k]\ninputs = {{ x = \"f16[n]\" }}\nprogram = \"{}x{}\"\ndims = {{ n = [8] }}\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let report = prism::frontend::parse("deep.toml", &source).unwrap_err();
    let located = report.located();
    assert_eq!(located.len(), 1);
    assert_eq!(located[0].code, "too-deep");
    assert_eq!((located[0].line, located[0].column), (3, 112));
}

#[test]
fn nesting_within_the_limit_parses_and_round_trips() {
    for text in [
        format!("{}x{}", "(".repeat(95), ")".repeat(95)),
        format!("{}x{}", "exp(".repeat(95), ")".repeat(95)),
        format!("{}x", "x + ".repeat(95)),
        format!("{}x", "-".repeat(95)),
        format!("{}x{}", "[".repeat(95), "]".repeat(95)),
    ] {
        assert_expr_round_trips(&expr(&text));
    }
}

/// The deepest programs accepted parse and lower on a 2 MiB stack (what test
/// threads get), in unoptimized builds too; one level more is `too-deep`.
#[test]
fn the_depth_limit_is_exact_and_safe_on_a_small_stack() {
    let file = |program: String| {
        format!(
            "[workload.k]\ninputs = {{ x = \"f16[n, d]\" }}\nprogram = \"{program}\"\ndims = {{ n = [8], d = [64] }}\n"
        )
    };
    type Nesting = fn(usize) -> String;
    let shapes: [(&str, Nesting); 6] = [
        ("calls", |k| {
            format!("{}x{}", "exp(".repeat(k), ")".repeat(k))
        }),
        ("library calls", |k| {
            format!("{}x{}", "rms_norm(".repeat(k), ")".repeat(k))
        }),
        ("parentheses", |k| {
            format!("{}x{}", "(".repeat(k), ")".repeat(k))
        }),
        ("negations", |k| format!("{}x", "-".repeat(k))),
        ("a chain", |k| format!("{}x", "x + ".repeat(k))),
        ("operators in parentheses", |k| {
            format!("{}x{}", "x * (".repeat(k), ")".repeat(k))
        }),
    ];
    for (what, make) in shapes {
        let (ok, deep) = (file(make(99)), file(make(101)));
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let ok = prism::frontend::parse("deep.toml", &ok).map(|_| ());
                let deep = prism::frontend::parse("deep.toml", &deep).map(|_| ());
                (
                    ok.map_err(|r| r.to_string()),
                    deep.map_err(|r| r.diagnostics[0].code),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(outcome.0, Ok(()), "{what} at the limit");
        assert_eq!(outcome.1, Err("too-deep"), "{what} past the limit");
    }
}

// -------------------------------------------------------------- proptest

fn node(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn ident_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,5}".prop_filter("`let` is a keyword", |s| s != "let")
}

fn ident() -> impl Strategy<Value = Ident> {
    ident_name().prop_map(|name| Ident {
        name,
        span: Span::default(),
    })
}

/// Non-negative finite floats, from tiny subnormals to huge; negative
/// numbers are `Neg(Num)`.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>()
            .prop_map(f64::abs)
            .prop_filter("finite", |v| v.is_finite()),
        (0u32..1000).prop_map(|k| f64::from(k) / 8.0),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(f64::MAX),
        Just(1e-6),
        Just(0.5),
        (1u64..u64::MAX)
            .prop_map(|bits| f64::from_bits(bits >> 1))
            .prop_filter("finite", |v| v.is_finite()),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        ident_name().prop_map(|n| node(ExprKind::Var(n))),
        (0u64..=(1 << 53)).prop_map(|i| node(ExprKind::Num(i as f64, true))),
        (0u64..1000).prop_map(|i| node(ExprKind::Num(i as f64, true))),
        float().prop_map(|v| node(ExprKind::Num(v, false))),
    ]
}

fn infix_op() -> impl Strategy<Value = InfixOp> {
    prop_oneof![
        Just(InfixOp::Add),
        Just(InfixOp::Sub),
        Just(InfixOp::Mul),
        Just(InfixOp::Div),
        Just(InfixOp::Matmul),
    ]
}

fn any_expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(6, 64, 4, |inner| {
        prop_oneof![
            (
                ident(),
                prop::collection::vec((prop::option::of(ident()), inner.clone()), 0..4)
            )
                .prop_map(|(func, args)| node(ExprKind::Call {
                    func,
                    args: args
                        .into_iter()
                        .map(|(name, value)| Arg { name, value })
                        .collect(),
                })),
            (infix_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| node(
                ExprKind::Infix {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                }
            )),
            inner.clone().prop_map(|e| node(ExprKind::Neg(Box::new(e)))),
            prop::collection::vec(inner, 0..4).prop_map(|v| node(ExprKind::List(v))),
        ]
    })
}

fn any_stmt() -> impl Strategy<Value = Stmt> {
    (
        prop_oneof![
            Just(StmtKind::Let),
            Just(StmtKind::Output),
            Just(StmtKind::Bare)
        ],
        ident(),
        any_expr(),
    )
        .prop_map(|(kind, name, expr)| Stmt {
            kind,
            // A bare statement's name is `out`, as the parser gives it.
            name: if kind == StmtKind::Bare {
                Ident {
                    name: "out".into(),
                    span: Span::default(),
                }
            } else {
                name
            },
            expr,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_expressions_round_trip(e in any_expr()) {
        let printed = e.to_string();
        let back = parse_expr(&Snippet::detached(&printed));
        prop_assert!(back.is_ok(), "{printed:?} does not parse: {:?}", back.err());
        let back = back.unwrap();
        prop_assert_eq!(back.without_spans(), e.without_spans(), "printed as {}", printed);
        prop_assert_eq!(back.to_string(), printed);
    }

    #[test]
    fn random_programs_round_trip(stmts in prop::collection::vec(any_stmt(), 1..5)) {
        let p = Program { stmts };
        let printed = p.to_string();
        let back = parse_program(&Snippet::detached(&printed));
        prop_assert!(back.is_ok(), "{printed:?} does not parse: {:?}", back.err());
        let back = back.unwrap();
        prop_assert_eq!(back.without_spans(), p.without_spans(), "printed as {}", printed);
        prop_assert_eq!(back.to_string(), printed);
    }

    /// Spans of a parsed expression cover exactly its text.
    #[test]
    fn spans_cover_the_printed_text(e in any_expr()) {
        let printed = e.to_string();
        let back = parse_expr(&Snippet::detached(&printed)).unwrap();
        prop_assert_eq!(back.span, Span::new(0, printed.len()));
        if let ExprKind::Infix { lhs, rhs, .. } = &back.kind {
            prop_assert!(lhs.span.end <= rhs.span.start);
            prop_assert!(back.span.start <= lhs.span.start && rhs.span.end <= back.span.end);
        }
    }

    /// Arbitrary text never panics the parser.
    #[test]
    fn arbitrary_text_never_panics(text in "[a-z0-9_ ()\\[\\],=+*/@.#;\n-]{0,40}|\\PC{0,20}") {
        let _ = parse_program(&Snippet::detached(&text));
        let _ = parse_expr(&Snippet::detached(&text));
    }
}
