//! API Gateway mapping templates: the subset of Velocity (VTL 1.7) that templates
//! use, evaluated against a request. No usable VTL crate exists (see DESIGN.md),
//! so this is ours: references with property/method chains, `$!quiet`,
//! `${braced}`, `#set`, `#if/#elseif/#else/#end`, `#foreach` (with
//! `$foreach.hasNext/index/count` and `$velocityCount`, at most 1,000
//! iterations), `#break`, `#stop`, `#define`, `#macro` and its calls, `##` and
//! `#* *#` comments, Velocity 1.7's whitespace rules (a `#set` takes the
//! spaces before it, a directive's closing `)`, `#else` and `#end` take the
//! rest of their line), string/number/boolean/list/map literals, comparison and
//! logical operators; and API Gateway's `$input`, `$util`, `$context`,
//! `$stageVariables`. JSONPath (`$input.path/json`) is serde_json_path.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine;
use serde_json::Value as Json;

/// Request headers API Gateway drops before the integration (its "important
/// notes" for REST APIs): no template and no proxy event sees them.
pub const DROPPED_HEADERS: &[&str] = &[
    "connection", "content-md5", "expect", "max-forwards", "proxy-authenticate", "server", "te", "transfer-encoding", "trailer", "upgrade", "www-authenticate",
];

/// Whether API Gateway drops this request header before the integration.
pub fn dropped_header(name: &str) -> bool {
    DROPPED_HEADERS.iter().any(|d| name.eq_ignore_ascii_case(d))
}

/// API Gateway's quota on the iterations of one `#foreach` (REST API quotas:
/// "Number of iterations in a #foreach ... #end loop in mapping templates").
pub const FOREACH_MAX_ITERATIONS: usize = 1000;

/// What a template can see of a request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub body: String,
    pub path: BTreeMap<String, String>,
    pub querystring: BTreeMap<String, String>,
    pub header: BTreeMap<String, String>,
    /// `$context` (requestId, stage, identity.sourceIp, ...).
    pub context: Json,
    pub stage_variables: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("mapping template, line {line}: {message}")]
pub struct VtlError {
    pub line: usize,
    pub message: String,
    /// The request's body, not the template, is at fault: a body that opens
    /// like JSON (`{`, `[`) but is not, read by `$input.path/json`. API Gateway
    /// answers the client 400 for it; any other template error is a 500.
    pub bad_payload: bool,
}

impl VtlError {
    fn new(line: usize, message: impl Into<String>) -> VtlError {
        VtlError { line, message: message.into(), bad_payload: false }
    }
}

/// What a response template set through `$context.responseOverride`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseOverride {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
}

/// Render `template` for `request`.
pub fn render(template: &str, request: &Request) -> Result<String, VtlError> {
    render_response(template, request).map(|(out, _)| out)
}

/// Render `template` for `request`, with what it set of
/// `$context.responseOverride.status` and `.header.NAME` (response templates).
pub fn render_response(template: &str, request: &Request) -> Result<(String, ResponseOverride), VtlError> {
    let mut parser = Parser::new(template);
    let nodes = parser.parse_block(&[])?.0;
    let mut ev = Eval {
        req: request,
        vars: BTreeMap::new(),
        defines: BTreeMap::new(),
        macros: parser.macros,
        depth: 0,
        out: String::new(),
        body_json: None,
        overrides: ResponseOverride::default(),
    };
    ev.run(&nodes)?;
    Ok((ev.out, ev.overrides))
}

/// Check that `template` parses (the stack file's templates, at validation).
pub fn check(template: &str) -> Result<(), VtlError> {
    Parser::new(template).parse_block(&[]).map(|_| ())
}

// ---------------------------------------------------------------- values

#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Val>),
    Map(Vec<(String, Val)>),
}

impl Val {
    fn from_json(j: &Json) -> Val {
        match j {
            Json::Null => Val::Null,
            Json::Bool(b) => Val::Bool(*b),
            Json::Number(n) => n.as_i64().map(Val::Int).unwrap_or_else(|| Val::Float(n.as_f64().unwrap_or(0.0))),
            Json::String(s) => Val::Str(s.clone()),
            Json::Array(a) => Val::List(a.iter().map(Val::from_json).collect()),
            Json::Object(o) => Val::Map(o.iter().map(|(k, v)| (k.clone(), Val::from_json(v))).collect()),
        }
    }

    fn map(entries: &BTreeMap<String, String>) -> Val {
        Val::Map(entries.iter().map(|(k, v)| (k.clone(), Val::Str(v.clone()))).collect())
    }

    fn truthy(&self) -> bool {
        !matches!(self, Val::Null | Val::Bool(false))
    }

    /// What API Gateway prints for a value: Java's `toString()` for scalars
    /// and maps (`{foo=bar}`), but a list as compact JSON, with everything in
    /// it (`[{"foo":"bar"}]`), alone or inside a map (`{foo=[{"nested":"bar"}]}`).
    fn render(&self) -> String {
        match self {
            Val::Null => String::new(),
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => java_double(*f),
            Val::Str(s) => s.clone(),
            Val::List(_) => self.to_json().to_string(),
            Val::Map(m) => format!("{{{}}}", m.iter().map(|(k, v)| format!("{k}={}", v.render())).collect::<Vec<_>>().join(", ")),
        }
    }

    fn to_json(&self) -> Json {
        match self {
            Val::Null => Json::Null,
            Val::Bool(b) => Json::Bool(*b),
            Val::Int(i) => Json::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
            Val::Str(s) => Json::String(s.clone()),
            Val::List(l) => Json::Array(l.iter().map(Val::to_json).collect()),
            Val::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    fn get(&self, key: &str) -> Val {
        match self {
            Val::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or(Val::Null),
            _ => Val::Null,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Val::Int(i) => Some(*i as f64),
            Val::Float(f) => Some(*f),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- syntax

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    /// `$ref` or `$!ref`: in API Gateway both print nothing for a null reference.
    Ref { r: Ref },
    Set { target: Ref, value: Expr },
    If { branches: Vec<(Expr, Vec<Node>)>, otherwise: Option<Vec<Node>> },
    Foreach { var: String, iter: Expr, body: Vec<Node> },
    Break,
    /// `#stop`: the rest of the template renders nothing.
    Stop,
    /// `#define($name) ... #end`: `$name` renders the block where it is used.
    Define { name: String, body: Vec<Node> },
    /// `#name(args)`: a call of a `#macro`.
    Call { name: String, args: Vec<Expr> },
}

/// A `#macro(name $param ...) ... #end`.
#[derive(Debug, Clone)]
struct Macro {
    params: Vec<String>,
    body: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Ref {
    root: String,
    chain: Vec<Acc>,
}

#[derive(Debug, Clone)]
enum Acc {
    Prop(String),
    Call(String, Vec<Expr>),
    Index(Expr),
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Val),
    /// A double-quoted string: interpolated when evaluated.
    Interp(Vec<Node>),
    Ref(Ref),
    List(Vec<Expr>),
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

struct Parser {
    s: Vec<char>,
    i: usize,
    /// Macros defined so far: Velocity knows a macro from its `#macro` on.
    macros: BTreeMap<String, Macro>,
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Parser {
    fn new(s: &str) -> Parser {
        Parser { s: s.chars().collect(), i: 0, macros: BTreeMap::new() }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.s.get(self.i + k).copied()
    }

    fn starts(&self, lit: &str) -> bool {
        lit.chars().enumerate().all(|(k, c)| self.peek(k) == Some(c))
    }

    fn line(&self) -> usize {
        self.s[..self.i.min(self.s.len())].iter().filter(|c| **c == '\n').count() + 1
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, VtlError> {
        Err(VtlError::new(self.line(), message.into()))
    }

    /// The directive name at `#` (handles `#{else}` too), if any.
    fn directive(&self) -> Option<(String, usize)> {
        let mut k = 1;
        let braced = self.peek(1) == Some('{');
        if braced {
            k += 1;
        }
        let mut name = String::new();
        while let Some(c) = self.peek(k) {
            if c.is_ascii_alphabetic() {
                name.push(c);
                k += 1;
            } else {
                break;
            }
        }
        if braced {
            if self.peek(k) != Some('}') {
                return None;
            }
            k += 1;
        }
        let known = matches!(name.as_str(), "set" | "if" | "elseif" | "else" | "end" | "foreach" | "break" | "stop" | "define" | "macro");
        (known || self.macros.contains_key(&name)).then_some((name, k))
    }

    /// After a directive alone on its line, the newline belongs to the directive.
    fn eat_line_end(&mut self) {
        let mut k = 0;
        while matches!(self.peek(k), Some(' ' | '\t')) {
            k += 1;
        }
        if self.peek(k) == Some('\n') {
            self.i += k + 1;
        } else if self.peek(k) == Some('\r') && self.peek(k + 1) == Some('\n') {
            self.i += k + 2;
        }
    }

    /// Parse nodes until one of `ends` (a directive name) or the end of input.
    fn parse_block(&mut self, ends: &[&str]) -> Result<(Vec<Node>, Option<String>), VtlError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            if c == '#' && self.peek(1) == Some('#') {
                while let Some(c) = self.peek(0) {
                    self.i += 1;
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            if c == '#' && self.peek(1) == Some('*') {
                self.i += 2;
                while self.peek(0).is_some() && !self.starts("*#") {
                    self.i += 1;
                }
                if self.peek(0).is_none() {
                    return self.err("unclosed `#*` comment");
                }
                self.i += 2;
                continue;
            }
            if c == '#'
                && let Some((name, len)) = self.directive()
            {
                // Velocity 1.7's `#set` takes the spaces and tabs before it.
                if name == "set" {
                    let kept = text.trim_end_matches([' ', '\t']).len();
                    text.truncate(kept);
                }
                if !text.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut text)));
                }
                if ends.contains(&name.as_str()) {
                    self.i += len;
                    return Ok((nodes, Some(name)));
                }
                self.i += len;
                nodes.push(self.parse_directive(&name)?);
                continue;
            }
            if c == '$' {
                let start = self.i;
                if let Some(node) = self.try_reference()? {
                    if !text.is_empty() {
                        nodes.push(Node::Text(std::mem::take(&mut text)));
                    }
                    nodes.push(node);
                    continue;
                }
                self.i = start;
            }
            text.push(c);
            self.i += 1;
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        if ends.is_empty() { Ok((nodes, None)) } else { self.err(format!("missing `#{}`", ends.last().unwrap_or(&"end"))) }
    }

    fn parse_directive(&mut self, name: &str) -> Result<Node, VtlError> {
        match name {
            "set" => {
                self.open_variable("#set", "`#set` needs a `$variable` on the left")?;
                let target = self.reference_body()?;
                self.ws();
                if self.peek(0) != Some('=') {
                    return self.err("`#set` needs `=`");
                }
                self.i += 1;
                let value = self.expr()?;
                self.close_paren("#set")?;
                self.eat_line_end();
                Ok(Node::Set { target, value })
            }
            "if" => {
                self.open_paren("#if")?;
                let mut cond = self.expr()?;
                self.close_paren("#if")?;
                self.eat_line_end();
                let mut branches = Vec::new();
                let mut otherwise = None;
                loop {
                    let (body, end) = self.parse_block(&["elseif", "else", "end"])?;
                    match end.as_deref() {
                        Some("elseif") => {
                            branches.push((cond, body));
                            self.open_paren("#elseif")?;
                            cond = self.expr()?;
                            self.close_paren("#elseif")?;
                            self.eat_line_end();
                        }
                        Some("else") => {
                            branches.push((cond, body));
                            self.eat_line_end();
                            let (body, _) = self.parse_block(&["end"])?;
                            self.eat_line_end();
                            otherwise = Some(body);
                            break;
                        }
                        _ => {
                            branches.push((cond, body));
                            self.eat_line_end();
                            break;
                        }
                    }
                }
                Ok(Node::If { branches, otherwise })
            }
            "foreach" => {
                self.open_variable("#foreach", "`#foreach` needs `$item in ...`")?;
                let var = self.ident().ok_or_else(|| VtlError::new(self.line(), "bad loop variable"))?;
                self.ws();
                if !self.starts("in") {
                    return self.err("`#foreach` needs `in`");
                }
                self.i += 2;
                let iter = self.expr()?;
                self.close_paren("#foreach")?;
                self.eat_line_end();
                let (body, _) = self.parse_block(&["end"])?;
                self.eat_line_end();
                Ok(Node::Foreach { var, iter, body })
            }
            "break" => Ok(Node::Break),
            "stop" => Ok(Node::Stop),
            "define" => {
                self.open_variable("#define", "`#define` needs a `$name`")?;
                let braced = self.peek(0) == Some('{');
                if braced {
                    self.i += 1;
                }
                let name = self.ident().ok_or_else(|| VtlError::new(self.line(), "`#define` needs a `$name`"))?;
                if braced && self.peek(0) == Some('}') {
                    self.i += 1;
                }
                self.close_paren("#define")?;
                self.eat_line_end();
                let (body, _) = self.parse_block(&["end"])?;
                self.eat_line_end();
                Ok(Node::Define { name, body })
            }
            "macro" => {
                self.open_paren("#macro")?;
                self.ws();
                let name = self.ident().ok_or_else(|| VtlError::new(self.line(), "`#macro` needs a name first: `#macro(name $arg ...)`"))?;
                let mut params = Vec::new();
                loop {
                    self.ws();
                    match self.peek(0) {
                        Some(',') => self.i += 1,
                        Some('$') => {
                            self.i += 1;
                            params.push(self.ident().ok_or_else(|| VtlError::new(self.line(), "bad `#macro` parameter"))?);
                        }
                        Some(')') => break,
                        _ => return self.err("`#macro(...)` takes a name and `$parameters`"),
                    }
                }
                self.i += 1;
                self.eat_line_end();
                // Known from here on, its own body included (recursion).
                self.macros.insert(name.clone(), Macro { params: params.clone(), body: Vec::new() });
                let (body, _) = self.parse_block(&["end"])?;
                self.eat_line_end();
                self.macros.insert(name, Macro { params, body });
                Ok(Node::Text(String::new()))
            }
            name if self.macros.contains_key(name) => {
                let name = name.to_owned();
                let mut args = Vec::new();
                self.ws_inline();
                if self.peek(0) == Some('(') {
                    self.i += 1;
                    loop {
                        self.ws();
                        match self.peek(0) {
                            Some(',') => self.i += 1,
                            Some(')') => break,
                            Some(_) => args.push(self.unary()?),
                            None => return self.err(format!("`#{name}(` is not closed")),
                        }
                    }
                    self.i += 1;
                    self.eat_line_end();
                }
                Ok(Node::Call { name, args })
            }
            other => self.err(format!("`#{other}` without its opening directive")),
        }
    }

    /// `(` then `$`: the directive's variable comes next.
    fn open_variable(&mut self, what: &str, message: &str) -> Result<(), VtlError> {
        self.open_paren(what)?;
        self.ws();
        if self.peek(0) != Some('$') {
            return self.err(message);
        }
        self.i += 1;
        Ok(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(0), Some(c) if c.is_whitespace()) {
            self.i += 1;
        }
    }

    fn open_paren(&mut self, what: &str) -> Result<(), VtlError> {
        self.ws_inline();
        if self.peek(0) != Some('(') {
            return self.err(format!("`{what}` needs `(`"));
        }
        self.i += 1;
        Ok(())
    }

    fn ws_inline(&mut self) {
        while matches!(self.peek(0), Some(' ' | '\t')) {
            self.i += 1;
        }
    }

    fn close_paren(&mut self, what: &str) -> Result<(), VtlError> {
        self.ws();
        if self.peek(0) != Some(')') {
            return self.err(format!("`{what}(...)` is not closed"));
        }
        self.i += 1;
        Ok(())
    }

    fn ident(&mut self) -> Option<String> {
        let c = self.peek(0)?;
        if !ident_start(c) {
            return None;
        }
        let mut s = String::new();
        while let Some(c) = self.peek(0) {
            if ident_char(c) {
                s.push(c);
                self.i += 1;
            } else {
                break;
            }
        }
        // A trailing `-` belongs to the text (`$a-` in "a-b"), not the name.
        while s.ends_with('-') {
            s.pop();
            self.i -= 1;
        }
        Some(s)
    }

    /// At `$` in text: a reference, or `None` for a literal `$`.
    fn try_reference(&mut self) -> Result<Option<Node>, VtlError> {
        self.i += 1;
        let quiet = self.peek(0) == Some('!');
        if quiet {
            self.i += 1;
        }
        let braced = self.peek(0) == Some('{');
        if braced {
            self.i += 1;
        }
        if !self.peek(0).is_some_and(ident_start) {
            return Ok(None);
        }
        let r = self.reference_body()?;
        if braced {
            if self.peek(0) != Some('}') {
                return self.err("`${` is not closed");
            }
            self.i += 1;
        }
        Ok(Some(Node::Ref { r }))
    }

    /// After `$`: `name(.prop|.method(args)|[index])*`.
    fn reference_body(&mut self) -> Result<Ref, VtlError> {
        let root = self.ident().ok_or_else(|| VtlError::new(self.line(), "expected a name after `$`"))?;
        let mut chain = Vec::new();
        loop {
            if self.peek(0) == Some('.') && self.peek(1).is_some_and(ident_start) {
                self.i += 1;
                let name = self.ident().unwrap_or_default();
                if self.peek(0) == Some('(') {
                    self.i += 1;
                    let mut args = Vec::new();
                    self.ws();
                    if self.peek(0) != Some(')') {
                        loop {
                            args.push(self.expr()?);
                            self.ws();
                            match self.peek(0) {
                                Some(',') => self.i += 1,
                                Some(')') => break,
                                _ => return self.err(format!("`{name}(` is not closed")),
                            }
                        }
                    }
                    self.i += 1;
                    chain.push(Acc::Call(name, args));
                } else {
                    chain.push(Acc::Prop(name));
                }
            } else if self.peek(0) == Some('[') {
                self.i += 1;
                let e = self.expr()?;
                self.ws();
                if self.peek(0) != Some(']') {
                    return self.err("`[` is not closed");
                }
                self.i += 1;
                chain.push(Acc::Index(e));
            } else {
                break;
            }
        }
        Ok(Ref { root, chain })
    }

    // ---- expressions (inside directives and method arguments)

    fn expr(&mut self) -> Result<Expr, VtlError> {
        self.binary(1)
    }

    /// The binary operator at the cursor: (operator, precedence, length).
    fn op(&mut self) -> Option<(Op, usize, usize)> {
        self.ws();
        const TABLE: [(&str, Op, usize); 17] = [
            ("||", Op::Or, 1),
            ("or ", Op::Or, 1),
            ("&&", Op::And, 2),
            ("and ", Op::And, 2),
            ("==", Op::Eq, 3),
            ("!=", Op::Ne, 3),
            ("eq ", Op::Eq, 3),
            ("ne ", Op::Ne, 3),
            ("<=", Op::Le, 4),
            (">=", Op::Ge, 4),
            ("<", Op::Lt, 4),
            (">", Op::Gt, 4),
            ("+", Op::Add, 5),
            ("-", Op::Sub, 5),
            ("*", Op::Mul, 6),
            ("/", Op::Div, 6),
            ("%", Op::Mod, 6),
        ];
        TABLE.iter().find(|(t, _, _)| self.starts(t)).map(|(t, op, p)| (*op, *p, t.len()))
    }

    /// Precedence climbing: operators of the same precedence associate left.
    fn binary(&mut self, min: usize) -> Result<Expr, VtlError> {
        let mut left = self.unary()?;
        loop {
            let save = self.i;
            match self.op() {
                Some((op, prec, len)) if prec >= min => {
                    self.i += len;
                    let right = self.binary(prec + 1)?;
                    left = Expr::Bin(op, Box::new(left), Box::new(right));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, VtlError> {
        self.ws();
        if self.peek(0) == Some('!') {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.starts("not ") {
            self.i += 4;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek(0) == Some('-') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
            return Ok(Expr::Neg(Box::new(self.primary()?)));
        }
        self.primary()
    }

    /// A string literal at the cursor, opened by `q`; a doubled `q` stands for itself.
    fn quoted(&mut self, q: char) -> Result<String, VtlError> {
        self.i += 1;
        let mut s = String::new();
        while let Some(c) = self.peek(0) {
            self.i += 1;
            if c == q {
                if self.peek(0) == Some(q) {
                    s.push(q);
                    self.i += 1;
                    continue;
                }
                return Ok(s);
            }
            s.push(c);
        }
        self.err("unclosed string")
    }

    fn primary(&mut self) -> Result<Expr, VtlError> {
        self.ws();
        let Some(c) = self.peek(0) else { return self.err("unexpected end of the template in an expression") };
        match c {
            '(' => {
                self.i += 1;
                let e = self.expr()?;
                self.close_paren("(")?;
                Ok(e)
            }
            '$' => {
                self.i += 1;
                if self.peek(0) == Some('!') {
                    self.i += 1;
                }
                let braced = self.peek(0) == Some('{');
                if braced {
                    self.i += 1;
                }
                let r = self.reference_body()?;
                if braced && self.peek(0) == Some('}') {
                    self.i += 1;
                }
                Ok(Expr::Ref(r))
            }
            '\'' => Ok(Expr::Lit(Val::Str(self.quoted('\'')?))),
            '"' => {
                let s = self.quoted('"')?;
                Ok(Expr::Interp(Parser::new(&s).parse_block(&[])?.0))
            }
            '[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek(0) == Some(']') {
                    self.i += 1;
                    return Ok(Expr::List(items));
                }
                let first = self.expr()?;
                self.ws();
                if self.starts("..") {
                    self.i += 2;
                    let last = self.expr()?;
                    self.ws();
                    if self.peek(0) != Some(']') {
                        return self.err("range `[a..b]` is not closed");
                    }
                    self.i += 1;
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                items.push(first);
                loop {
                    self.ws();
                    match self.peek(0) {
                        Some(',') => {
                            self.i += 1;
                            items.push(self.expr()?);
                        }
                        Some(']') => {
                            self.i += 1;
                            return Ok(Expr::List(items));
                        }
                        _ => return self.err("list `[...]` is not closed"),
                    }
                }
            }
            '{' => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    self.ws();
                    if self.peek(0) == Some('}') {
                        self.i += 1;
                        return Ok(Expr::Map(entries));
                    }
                    let k = self.expr()?;
                    self.ws();
                    if self.peek(0) != Some(':') {
                        return self.err("map entries are `key : value`");
                    }
                    self.i += 1;
                    let v = self.expr()?;
                    entries.push((k, v));
                    self.ws();
                    if self.peek(0) == Some(',') {
                        self.i += 1;
                    }
                }
            }
            c if c.is_ascii_digit() => {
                let mut s = String::new();
                while let Some(c) = self.peek(0) {
                    if c.is_ascii_digit() || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit())) {
                        s.push(c);
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                Ok(Expr::Lit(if s.contains('.') { Val::Float(s.parse().unwrap_or(0.0)) } else { Val::Int(s.parse().unwrap_or(0)) }))
            }
            _ => {
                for (word, v) in [("true", Val::Bool(true)), ("false", Val::Bool(false)), ("null", Val::Null)] {
                    if self.starts(word) && !self.peek(word.len()).is_some_and(ident_char) {
                        self.i += word.len();
                        return Ok(Expr::Lit(v));
                    }
                }
                self.err(format!("unexpected `{c}` in an expression"))
            }
        }
    }
}

// ---------------------------------------------------------------- evaluation

struct Eval<'a> {
    req: &'a Request,
    vars: BTreeMap<String, Val>,
    defines: BTreeMap<String, Vec<Node>>,
    macros: BTreeMap<String, Macro>,
    /// Nesting of macro calls and defined blocks (Velocity's own limit is 20).
    depth: usize,
    out: String,
    body_json: Option<Result<Json, String>>,
    overrides: ResponseOverride,
}

enum Flow {
    Normal,
    Break,
    Stop,
}

/// Velocity's `velocimacro.max.depth`.
const MAX_DEPTH: usize = 20;

impl Eval<'_> {
    fn run(&mut self, nodes: &[Node]) -> Result<Flow, VtlError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                // API Gateway prints a null or undefined reference as nothing
                // (Velocity would print its source text; API Gateway does not).
                Node::Ref { r, .. } => {
                    if let Some(v) = self.reference(r)? {
                        let text = v.render();
                        self.out.push_str(&text);
                    }
                }
                Node::Set { target, value } => {
                    let v = self.expr(value)?;
                    if target.root == "context" {
                        self.set_context(&target.chain, v);
                    } else if target.chain.is_empty() {
                        self.vars.insert(target.root.clone(), v);
                    } else if let (Some(Acc::Prop(key)), 1) = (target.chain.last(), target.chain.len())
                        && let Some(Val::Map(m)) = self.vars.get_mut(&target.root)
                    {
                        put(m, key, v);
                    }
                }
                Node::If { branches, otherwise } => {
                    let mut taken = false;
                    for (cond, body) in branches {
                        if self.expr(cond)?.truthy() {
                            taken = true;
                            match self.run(body)? {
                                Flow::Normal => {}
                                flow => return Ok(flow),
                            }
                            break;
                        }
                    }
                    if !taken && let Some(body) = otherwise {
                        match self.run(body)? {
                            Flow::Normal => {}
                            flow => return Ok(flow),
                        }
                    }
                }
                Node::Foreach { var, iter, body } => {
                    // Velocity iterates lists and a map's values; anything
                    // else is not iterable and renders no iteration.
                    let mut items = match self.expr(iter)? {
                        Val::List(l) => l,
                        Val::Map(m) => m.into_iter().map(|(_, v)| v).collect(),
                        _ => Vec::new(),
                    };
                    items.truncate(FOREACH_MAX_ITERATIONS);
                    let saved = (self.vars.get(var).cloned(), self.vars.get("foreach").cloned(), self.vars.get("velocityCount").cloned());
                    let n = items.len();
                    for (i, item) in items.into_iter().enumerate() {
                        self.vars.insert(var.clone(), item);
                        self.vars.insert(
                            "foreach".into(),
                            Val::Map(vec![
                                ("hasNext".into(), Val::Bool(i + 1 < n)),
                                ("index".into(), Val::Int(i as i64)),
                                ("count".into(), Val::Int(i as i64 + 1)),
                                ("first".into(), Val::Bool(i == 0)),
                                ("last".into(), Val::Bool(i + 1 == n)),
                            ]),
                        );
                        self.vars.insert("velocityCount".into(), Val::Int(i as i64 + 1));
                        match self.run(body)? {
                            Flow::Normal => {}
                            Flow::Break => break,
                            Flow::Stop => return Ok(Flow::Stop),
                        }
                    }
                    for (name, value) in [(var.as_str(), saved.0), ("foreach", saved.1), ("velocityCount", saved.2)] {
                        match value {
                            Some(v) => self.vars.insert(name.to_owned(), v),
                            None => self.vars.remove(name),
                        };
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
                Node::Define { name, body } => {
                    self.defines.insert(name.clone(), body.clone());
                }
                Node::Call { name, args } => {
                    let Some(m) = self.macros.get(name).cloned() else { continue };
                    let values = self.args(args)?;
                    // Arguments bind to the parameters for the call; the
                    // variables they shadow come back after it.
                    let saved: Vec<(String, Option<Val>)> = m.params.iter().map(|p| (p.clone(), self.vars.get(p).cloned())).collect();
                    for (k, p) in m.params.iter().enumerate() {
                        match values.get(k) {
                            Some(v) => self.vars.insert(p.clone(), v.clone()),
                            None => self.vars.remove(p),
                        };
                    }
                    let flow = self.nested(&m.body);
                    for (p, v) in saved {
                        match v {
                            Some(v) => self.vars.insert(p, v),
                            None => self.vars.remove(&p),
                        };
                    }
                    if let Flow::Stop = flow? {
                        return Ok(Flow::Stop);
                    }
                }
            }
        }
        Ok(Flow::Normal)
    }

    /// Run a macro's body or a defined block, within Velocity's depth limit.
    fn nested(&mut self, body: &[Node]) -> Result<Flow, VtlError> {
        if self.depth >= MAX_DEPTH {
            return Err(VtlError::new(0, format!("macros or #define blocks nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        let flow = self.run(body);
        self.depth -= 1;
        flow
    }

    /// `#set($context.responseOverride.status = N)` and
    /// `#set($context.responseOverride.header.NAME = V)`; the rest of
    /// `$context` is read-only, as in API Gateway.
    fn set_context(&mut self, chain: &[Acc], v: Val) {
        let props: Vec<&str> = chain.iter().map(|a| if let Acc::Prop(p) = a { p.as_str() } else { "" }).collect();
        match props.as_slice() {
            ["responseOverride", "status"] => self.overrides.status = v.render().trim().parse().ok().filter(|s| (100..600).contains(s)),
            ["responseOverride", "header", name] if !name.is_empty() => {
                let name = (*name).to_owned();
                self.overrides.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
                self.overrides.headers.push((name, v.render()));
            }
            _ => {}
        }
    }

    /// The request body as templates see it: API Gateway gives an empty body as `{}`.
    fn body_text(&self) -> String {
        if self.req.body.is_empty() { "{}".to_owned() } else { self.req.body.clone() }
    }

    /// The body as JSONPath sees it. API Gateway's JSONPath reads bodies
    /// leniently (json-smart's permissive mode): a body that is not JSON is one
    /// string (`a=b` is `"a=b"`), unless it opens like JSON (`{`, `[`) and is
    /// broken, which fails the request with 400.
    fn body(&mut self) -> Result<Json, VtlError> {
        if self.body_json.is_none() {
            let text = self.body_text();
            let parsed = match serde_json::from_str(&text) {
                Ok(v) => Ok(v),
                Err(e) if text.trim_start().starts_with(['{', '[']) => Err(format!("Could not process payload: {e}")),
                Err(_) => Ok(Json::String(text)),
            };
            self.body_json = Some(parsed);
        }
        match self.body_json.clone() {
            Some(Ok(v)) => Ok(v),
            Some(Err(message)) => Err(VtlError { line: 0, message, bad_payload: true }),
            None => Ok(Json::Null),
        }
    }

    fn jsonpath(&mut self, path: &str, line_hint: &str) -> Result<Json, VtlError> {
        let body = self.body()?;
        let p = serde_json_path::JsonPath::parse(path)
            .map_err(|e| VtlError::new(0, format!("invalid JSONPath `{path}` in {line_hint}: {e}")))?;
        let found: Vec<&Json> = p.query(&body).all();
        Ok(match found.len() {
            0 => Json::Null,
            1 => found[0].clone(),
            _ => Json::Array(found.into_iter().cloned().collect()),
        })
    }

    fn params(&self) -> Val {
        Val::Map(vec![
            ("path".into(), Val::map(&self.req.path)),
            ("querystring".into(), Val::map(&self.req.querystring)),
            ("header".into(), Val::Map(self.headers().map(|(k, v)| (k.clone(), Val::Str(v.clone()))).collect())),
        ])
    }

    /// The request's headers as the integration sees them: without the ones
    /// API Gateway drops.
    fn headers(&self) -> impl Iterator<Item = (&String, &String)> {
        self.req.header.iter().filter(|(k, _)| !dropped_header(k))
    }

    fn args(&mut self, args: &[Expr]) -> Result<Vec<Val>, VtlError> {
        args.iter().map(|a| self.expr(a)).collect()
    }

    fn arg_str(args: &[Val], i: usize) -> String {
        args.get(i).map(Val::render).unwrap_or_default()
    }

    /// `None` when the root variable is unknown (rendered literally, like Velocity).
    fn reference(&mut self, r: &Ref) -> Result<Option<Val>, VtlError> {
        let mut chain = r.chain.iter();
        let mut cur = match r.root.as_str() {
            "input" => match chain.next() {
                Some(Acc::Prop(p)) if p == "body" => Val::Str(self.body_text()),
                Some(Acc::Call(m, args)) => {
                    let args = self.args(args)?;
                    match m.as_str() {
                        "json" => {
                            let j = self.jsonpath(&Self::arg_str(&args, 0), "$input.json")?;
                            Val::Str(serde_json::to_string(&j).unwrap_or_default())
                        }
                        "path" => Val::from_json(&self.jsonpath(&Self::arg_str(&args, 0), "$input.path")?),
                        "params" if args.is_empty() => self.params(),
                        "params" => {
                            let name = Self::arg_str(&args, 0);
                            let found = self
                                .req
                                .path
                                .get(&name)
                                .or_else(|| self.req.querystring.get(&name))
                                .or_else(|| self.headers().find(|(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v));
                            Val::Str(found.cloned().unwrap_or_default())
                        }
                        "body" => Val::Str(self.body_text()),
                        other => return Err(VtlError::new(0, format!("`$input.{other}()` is not a method of $input"))),
                    }
                }
                _ => return Ok(None),
            },
            "util" => match chain.next() {
                Some(Acc::Call(m, args)) => {
                    let args = self.args(args)?;
                    let a = Self::arg_str(&args, 0);
                    match m.as_str() {
                        "escapeJavaScript" => Val::Str(escape_javascript(&a)),
                        "urlEncode" => Val::Str(url_encode(&a)),
                        "urlDecode" => Val::Str(percent_encoding::percent_decode_str(&a.replace('+', " ")).decode_utf8_lossy().into_owned()),
                        "base64Encode" => Val::Str(base64::engine::general_purpose::STANDARD.encode(a.as_bytes())),
                        "base64Decode" => Val::Str(
                            base64::engine::general_purpose::STANDARD.decode(a.as_bytes()).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
                        ),
                        "parseJson" => Val::from_json(&serde_json::from_str::<Json>(&a).map_err(|e| VtlError::new(0, format!("$util.parseJson: {e}")))?),
                        other => return Err(VtlError::new(0, format!("`$util.{other}()` is not a method of $util"))),
                    }
                }
                _ => return Ok(None),
            },
            "context" if matches!(r.chain.first(), Some(Acc::Prop(p)) if p == "responseOverride") => {
                chain.next();
                let o = &self.overrides;
                let headers = Val::Map(o.headers.iter().map(|(k, v)| (k.clone(), Val::Str(v.clone()))).collect());
                Val::Map(vec![("status".into(), o.status.map(|s| Val::Int(s.into())).unwrap_or(Val::Null)), ("header".into(), headers)])
            }
            "context" => Val::from_json(&self.req.context),
            "stageVariables" => Val::map(&self.req.stage_variables),
            name if self.vars.contains_key(name) && Self::mutating(&r.chain) => {
                let Some((Acc::Call(m, args), props)) = r.chain.split_last() else { unreachable!("checked by mutating") };
                let args = self.args(args)?;
                let mut target = self.vars.get_mut(name).expect("checked above");
                for p in props {
                    let Acc::Prop(p) = p else { unreachable!("checked by mutating") };
                    target = match target {
                        Val::Map(m) => match m.iter_mut().find(|(k, _)| k == p) {
                            Some((_, v)) => v,
                            None => return Ok(Some(Val::Null)),
                        },
                        _ => return Ok(Some(Val::Null)),
                    };
                }
                return Ok(Some(mutate(target, m, &args)));
            }
            name => match self.vars.get(name) {
                Some(v) => v.clone(),
                None => match self.defines.get(name).cloned() {
                    Some(body) => {
                        let saved = std::mem::take(&mut self.out);
                        let flow = self.nested(&body);
                        let text = std::mem::replace(&mut self.out, saved);
                        flow?;
                        Val::Str(text)
                    }
                    None => return Ok(None),
                },
            },
        };
        for acc in chain {
            cur = match acc {
                Acc::Prop(p) => match &cur {
                    Val::Map(_) => cur.get(p),
                    Val::List(l) if p == "size" => Val::Int(l.len() as i64),
                    _ => Val::Null,
                },
                Acc::Index(e) => {
                    let k = self.expr(e)?;
                    match (&cur, &k) {
                        (Val::List(l), Val::Int(i)) => {
                            let idx = if *i < 0 { l.len() as i64 + i } else { *i };
                            l.get(idx as usize).cloned().unwrap_or(Val::Null)
                        }
                        (Val::Map(_), key) => cur.get(&key.render()),
                        _ => Val::Null,
                    }
                }
                Acc::Call(m, args) => {
                    let args = self.args(args)?;
                    method(&cur, m, &args)
                }
            };
        }
        Ok(Some(cur))
    }

    /// `$var.add(x)`, `$var.a.b.put(k, v)`...: a Java collection method that
    /// changes the variable's list or map in place (templates build arrays so).
    fn mutating(chain: &[Acc]) -> bool {
        match chain.split_last() {
            Some((Acc::Call(m, _), props)) => {
                matches!(m.as_str(), "add" | "addAll" | "put" | "putAll" | "remove" | "clear") && props.iter().all(|a| matches!(a, Acc::Prop(_)))
            }
            _ => false,
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<Val, VtlError> {
        Ok(match e {
            Expr::Lit(v) => v.clone(),
            Expr::Interp(nodes) => {
                let saved = std::mem::take(&mut self.out);
                self.run(nodes)?;
                Val::Str(std::mem::replace(&mut self.out, saved))
            }
            Expr::Ref(r) => self.reference(r)?.unwrap_or(Val::Null),
            Expr::List(items) => Val::List(items.iter().map(|i| self.expr(i)).collect::<Result<_, _>>()?),
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?.number().unwrap_or(0.0) as i64, self.expr(b)?.number().unwrap_or(0.0) as i64);
                if a <= b { Val::List((a..=b).map(Val::Int).collect()) } else { Val::List((b..=a).rev().map(Val::Int).collect()) }
            }
            Expr::Map(entries) => {
                let mut m = Vec::new();
                for (k, v) in entries {
                    m.push((self.expr(k)?.render(), self.expr(v)?));
                }
                Val::Map(m)
            }
            Expr::Not(x) => Val::Bool(!self.expr(x)?.truthy()),
            Expr::Neg(x) => match self.expr(x)? {
                Val::Int(i) => Val::Int(-i),
                Val::Float(f) => Val::Float(-f),
                _ => Val::Null,
            },
            Expr::Bin(op, a, b) => {
                let l = self.expr(a)?;
                if *op == Op::And && !l.truthy() {
                    return Ok(Val::Bool(false));
                }
                if *op == Op::Or && l.truthy() {
                    return Ok(Val::Bool(true));
                }
                let r = self.expr(b)?;
                binary(*op, &l, &r)
            }
        })
    }
}

fn binary(op: Op, l: &Val, r: &Val) -> Val {
    let nums = (l.number(), r.number());
    match op {
        Op::And => Val::Bool(l.truthy() && r.truthy()),
        Op::Or => Val::Bool(l.truthy() || r.truthy()),
        Op::Eq => Val::Bool(equal(l, r)),
        Op::Ne => Val::Bool(!equal(l, r)),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match nums {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => Some(l.render().cmp(&r.render())),
            };
            let Some(ord) = ord else { return Val::Bool(false) };
            Val::Bool(match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        Op::Add if !matches!(nums, (Some(_), Some(_))) => Val::Str(format!("{}{}", l.render(), r.render())),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Mod => match (l, r) {
            (Val::Int(a), Val::Int(b)) => match op {
                Op::Add => Val::Int(a.wrapping_add(*b)),
                Op::Sub => Val::Int(a.wrapping_sub(*b)),
                Op::Mul => Val::Int(a.wrapping_mul(*b)),
                Op::Div if *b != 0 => Val::Int(a / b),
                Op::Mod if *b != 0 => Val::Int(a % b),
                _ => Val::Null,
            },
            _ => match nums {
                (Some(a), Some(b)) => Val::Float(match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                    _ => a % b,
                }),
                _ => Val::Null,
            },
        },
    }
}

fn equal(l: &Val, r: &Val) -> bool {
    // API Gateway compares a null (or undefined) reference equal to "".
    match (l, r) {
        (Val::Null, Val::Str(s)) | (Val::Str(s), Val::Null) => return s.is_empty(),
        _ => {}
    }
    match (l.number(), r.number()) {
        (Some(a), Some(b)) => a == b,
        _ => match (l, r) {
            (Val::Str(a), b) | (b, Val::Str(a)) if !matches!(b, Val::Null) => *a == b.render(),
            _ => l == r,
        },
    }
}

/// Java's `Double.toString`: the shortest digits that read back the same,
/// plain between 10^-3 and 10^7 (`12.5`, `100.0`), else `1.0E7`, `1.5E-4`.
fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let a = f.abs();
    if (1e-3..1e7).contains(&a) {
        let s = f.to_string();
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    // `{:e}` is the shortest round-trip mantissa: `1.5e-4`, `1e7`.
    let e = format!("{f:e}");
    let (mantissa, exponent) = e.split_once('e').unwrap_or((&e, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_owned() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exponent}")
}

/// Java's `Map.put` on a map value, keeping the key's place: the previous
/// value, or null for a new key (`#set($m.k = v)` and `$m.put(k, v)` alike).
fn put(m: &mut Vec<(String, Val)>, key: &str, v: Val) -> Val {
    match m.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => std::mem::replace(&mut entry.1, v),
        None => {
            m.push((key.to_owned(), v));
            Val::Null
        }
    }
}

/// Java's collection methods that change a list or map, with Java's return
/// values (`add` is `true`, `put` the previous value); others as `method`.
fn mutate(target: &mut Val, name: &str, args: &[Val]) -> Val {
    match (&mut *target, name, args) {
        (Val::List(l), "add", [x]) => {
            l.push(x.clone());
            Val::Bool(true)
        }
        (Val::List(l), "add", [Val::Int(i), x]) if (0..=l.len() as i64).contains(i) => {
            l.insert(*i as usize, x.clone());
            Val::Null
        }
        (Val::List(l), "addAll", [Val::List(more)]) => {
            l.extend(more.iter().cloned());
            Val::Bool(!more.is_empty())
        }
        (Val::List(l), "remove", [Val::Int(i)]) if (0..l.len() as i64).contains(i) => l.remove(*i as usize),
        (Val::List(l), "clear", []) => {
            l.clear();
            Val::Null
        }
        (Val::Map(m), "put", [k, v]) => put(m, &k.render(), v.clone()),
        (Val::Map(m), "putAll", [Val::Map(more)]) => {
            for (k, v) in more {
                put(m, k, v.clone());
            }
            Val::Null
        }
        (Val::Map(m), "remove", [k]) => {
            let key = k.render();
            match m.iter().position(|(x, _)| *x == key) {
                Some(i) => m.remove(i).1,
                None => Val::Null,
            }
        }
        (Val::Map(m), "clear", []) => {
            m.clear();
            Val::Null
        }
        _ => method(target, name, args),
    }
}

/// A Java regular expression as the regex crate reads it (the same syntax
/// for what templates use); an invalid one matches nothing.
fn java_regex(pattern: &str, whole: bool) -> Option<regex::Regex> {
    let p = if whole { format!("^(?:{pattern})$") } else { pattern.to_owned() };
    regex::Regex::new(&p).ok()
}

/// A Java replacement string (`$1` a group, `\$` a literal `$`) as the regex
/// crate writes it (`${1}`, `$$`).
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                let mut group = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    group.push(d);
                    chars.next();
                }
                if group.is_empty() { out.push_str("$$") } else { out.push_str(&format!("${{{group}}}")) }
            }
            c => out.push(c),
        }
    }
    out
}

/// The Java methods templates call on strings, maps and lists.
fn method(v: &Val, name: &str, args: &[Val]) -> Val {
    let a0 = args.first().map(Val::render).unwrap_or_default();
    let a1 = || args.get(1).map(Val::render).unwrap_or_default();
    match (v, name) {
        (Val::Str(s), "replaceAll") => java_regex(&a0, false).map(|re| Val::Str(re.replace_all(s, java_replacement(&a1()).as_str()).into_owned())).unwrap_or(Val::Null),
        (Val::Str(s), "replaceFirst") => java_regex(&a0, false).map(|re| Val::Str(re.replace(s, java_replacement(&a1()).as_str()).into_owned())).unwrap_or(Val::Null),
        (Val::Str(s), "matches") => Val::Bool(java_regex(&a0, true).is_some_and(|re| re.is_match(s))),
        (Val::Str(s), "lastIndexOf") => Val::Int(s.rfind(&a0).map(|i| s[..i].chars().count() as i64).unwrap_or(-1)),
        (Val::Str(s), "charAt") => args.first().and_then(Val::number).and_then(|i| s.chars().nth(i as usize)).map(|c| Val::Str(c.to_string())).unwrap_or(Val::Null),
        (Val::Str(s), "concat") => Val::Str(format!("{s}{a0}")),
        (Val::Str(s), "length") => Val::Int(s.chars().count() as i64),
        (Val::Str(s), "isEmpty") => Val::Bool(s.is_empty()),
        (Val::Str(s), "toLowerCase") => Val::Str(s.to_lowercase()),
        (Val::Str(s), "toUpperCase") => Val::Str(s.to_uppercase()),
        (Val::Str(s), "trim") => Val::Str(s.trim().to_owned()),
        (Val::Str(s), "contains") => Val::Bool(s.contains(&a0)),
        (Val::Str(s), "startsWith") => Val::Bool(s.starts_with(&a0)),
        (Val::Str(s), "endsWith") => Val::Bool(s.ends_with(&a0)),
        (Val::Str(s), "equals") => Val::Bool(*s == a0),
        (Val::Str(s), "equalsIgnoreCase") => Val::Bool(s.eq_ignore_ascii_case(&a0)),
        (Val::Str(s), "indexOf") => Val::Int(s.find(&a0).map(|i| s[..i].chars().count() as i64).unwrap_or(-1)),
        (Val::Str(s), "replace") => Val::Str(s.replace(&a0, &a1())),
        // Java's `split` takes a regex and drops trailing empty strings.
        (Val::Str(s), "split") => match java_regex(&a0, false) {
            Some(re) => {
                let mut parts: Vec<&str> = if s.is_empty() { vec![""] } else { re.split(s).collect() };
                while parts.len() > 1 && parts.last() == Some(&"") {
                    parts.pop();
                }
                Val::List(parts.into_iter().map(|p| Val::Str(p.to_owned())).collect())
            }
            None => Val::Null,
        },
        (Val::Str(s), "substring") => {
            let chars: Vec<char> = s.chars().collect();
            let from = args.first().and_then(Val::number).unwrap_or(0.0).max(0.0) as usize;
            let to = args.get(1).and_then(Val::number).map(|n| n.max(0.0) as usize).unwrap_or(chars.len()).min(chars.len());
            Val::Str(chars.get(from.min(to)..to).map(|c| c.iter().collect()).unwrap_or_default())
        }
        (Val::Str(s), "toString") => Val::Str(s.clone()),
        (Val::Map(_), "get") => v.get(&a0),
        (Val::Map(m), "keySet") => Val::List(m.iter().map(|(k, _)| Val::Str(k.clone())).collect()),
        (Val::Map(m), "values") => Val::List(m.iter().map(|(_, v)| v.clone()).collect()),
        (Val::Map(m), "entrySet") => {
            Val::List(m.iter().map(|(k, v)| Val::Map(vec![("key".into(), Val::Str(k.clone())), ("value".into(), v.clone())])).collect())
        }
        (Val::Map(m), "size") => Val::Int(m.len() as i64),
        (Val::Map(m), "isEmpty") => Val::Bool(m.is_empty()),
        (Val::Map(m), "containsKey") => Val::Bool(m.iter().any(|(k, _)| *k == a0)),
        (Val::List(l), "size") => Val::Int(l.len() as i64),
        (Val::List(l), "isEmpty") => Val::Bool(l.is_empty()),
        (Val::List(l), "get") => args.first().and_then(Val::number).and_then(|i| l.get(i as usize).cloned()).unwrap_or(Val::Null),
        (Val::List(l), "contains") => Val::Bool(l.iter().any(|x| equal(x, args.first().unwrap_or(&Val::Null)))),
        (_, "toString") => Val::Str(v.render()),
        _ => Val::Null,
    }
}

/// Apache Commons `StringEscapeUtils.escapeJavaScript`, which API Gateway uses:
/// it escapes `'` and `/` too (so `\'` inside JSON is AWS's behaviour, not ours);
/// other control characters and everything past DEL (0x7F, itself kept) as
/// `\uXXXX` in upper-case hex, per UTF-16 unit (a character outside the BMP is
/// its surrogate pair, as Java strings hold it).
pub fn escape_javascript(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04X}", unit);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`: spaces as `+`.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
