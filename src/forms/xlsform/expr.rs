//! The XPath that XLSForms write in `relevant` and `constraint`, as far as this server maps it:
//! comparisons of a field (`${name}`) or the answer itself (`.`) with literals or other fields,
//! `and`, `or`, `not()`, `selected()`, `regex()`, `string-length()`, `count-selected()`,
//! `true()`, `false()` and parentheses. Anything else (arithmetic, paths, other functions) is a
//! parse error that names what was not understood: a form is refused, never half-read.

use std::fmt;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `${name}`.
    Field(String),
    /// `.`: the answer a constraint is about.
    Current,
    Text(String),
    Number(f64),
    Compare(Box<Expr>, Op, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// A function call: one of [`FUNCTIONS`], with its arguments.
    Call(&'static str, Vec<Expr>),
}

/// Parentheses and calls nested deeper than this are refused (the parser recurses).
const MAX_DEPTH: usize = 64;
/// Tokens in one expression: `and` chains are trees that later steps walk recursively.
const MAX_TOKENS: usize = 1_000;

/// The functions understood, with how many arguments each takes.
const FUNCTIONS: [(&str, usize); 7] = [
    ("not", 1),
    ("selected", 2),
    ("regex", 2),
    ("string-length", 1),
    ("count-selected", 1),
    ("true", 0),
    ("false", 0),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// The same comparison with its sides swapped (`3 < .` is `. > 3`).
    pub fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            same => same,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// Why an expression could not be read: the character offset and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub at: usize,
    pub problem: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.at + 1, self.problem)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Field(String),
    Dot,
    Text(String),
    Number(f64),
    Name(String),
    Op(Op),
    Open,
    Close,
    Comma,
    Minus,
}

/// Parses one expression.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(text)?;
    if let Some((at, _)) = tokens.get(MAX_TOKENS) {
        return Err(ParseError {
            at: *at,
            problem: format!("an expression of more than {MAX_TOKENS} parts"),
        });
    }
    let mut parser = Parser {
        tokens,
        next: 0,
        end: text.chars().count(),
        depth: 0,
    };
    let expr = parser.or()?;
    match parser.tokens.get(parser.next) {
        None => Ok(expr),
        Some((at, token)) => Err(ParseError {
            at: *at,
            problem: format!("unexpected {}", describe(token)),
        }),
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Field(name) => format!("${{{name}}}"),
        Token::Dot => "'.'".into(),
        Token::Text(text) => format!("'{text}'"),
        Token::Number(n) => n.to_string(),
        Token::Name(name) => format!("'{name}'"),
        Token::Op(op) => format!("'{}'", op.as_str()),
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Comma => "','".into(),
        Token::Minus => "'-'".into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |at: usize, problem: &str| ParseError {
        at,
        problem: problem.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let token = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '$' => {
                if chars.get(i + 1) != Some(&'{') {
                    return Err(error(i, "a field reference is written ${name}"));
                }
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| error(i, "${ is never closed with }"))?;
                let name: String = chars[i + 2..i + close].iter().collect();
                i += close + 1;
                Token::Field(name.trim().to_owned())
            }
            '\'' | '"' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or_else(|| error(i, "a quoted text is never closed"))?;
                let text: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                Token::Text(text)
            }
            '(' => {
                i += 1;
                Token::Open
            }
            ')' => {
                i += 1;
                Token::Close
            }
            ',' => {
                i += 1;
                Token::Comma
            }
            '-' => {
                i += 1;
                Token::Minus
            }
            '=' => {
                i += 1;
                Token::Op(Op::Eq)
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Token::Op(Op::Ne)
            }
            '<' | '>' => {
                let or_equal = chars.get(i + 1) == Some(&'=');
                i += if or_equal { 2 } else { 1 };
                Token::Op(match (c, or_equal) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                })
            }
            '.' if !chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                i += 1;
                Token::Dot
            }
            c if c.is_ascii_digit() || c == '.' => {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let literal: String = chars[start..i].iter().collect();
                let number = literal.parse().map_err(|_| error(start, "not a number"))?;
                Token::Number(number)
            }
            c if c.is_ascii_alphabetic() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '-') {
                    i += 1;
                }
                Token::Name(chars[start..i].iter().collect())
            }
            other => {
                return Err(error(
                    i,
                    &format!(
                        "'{other}' is not understood here (arithmetic and paths are not mapped)"
                    ),
                ));
            }
        };
        tokens.push((start, token));
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// The offset just past the text, for "ends too soon".
    end: usize,
    /// How many parentheses and calls are open.
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(at, _)| *at)
    }

    fn fail<T>(&self, problem: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            at: self.at(),
            problem: problem.into(),
        })
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Name(name)) if name == word) {
            self.next += 1;
            return true;
        }
        false
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.compare()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.compare()?));
        }
        Ok(left)
    }

    fn compare(&mut self) -> Result<Expr, ParseError> {
        let left = self.primary()?;
        if let Some(Token::Op(op)) = self.peek() {
            let op = *op;
            self.next += 1;
            let right = self.primary()?;
            if let Some(Token::Op(_)) = self.peek() {
                return self.fail("comparisons cannot be chained: join them with and");
            }
            return Ok(Expr::Compare(Box::new(left), op, Box::new(right)));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        if self.depth >= MAX_DEPTH {
            return self.fail(format!("more than {MAX_DEPTH} levels of parentheses"));
        }
        self.depth += 1;
        let parsed = self.primary_within();
        self.depth -= 1;
        parsed
    }

    fn primary_within(&mut self) -> Result<Expr, ParseError> {
        let Some((_, token)) = self.tokens.get(self.next).cloned() else {
            return self.fail("the expression ends too soon");
        };
        self.next += 1;
        match token {
            Token::Field(name) if name.is_empty() => {
                self.next -= 1;
                self.fail("${} names no field")
            }
            Token::Field(name) => Ok(Expr::Field(name)),
            Token::Dot => Ok(Expr::Current),
            Token::Text(text) => Ok(Expr::Text(text)),
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Minus => match self.tokens.get(self.next) {
                Some((_, Token::Number(n))) => {
                    let n = -n;
                    self.next += 1;
                    Ok(Expr::Number(n))
                }
                _ => self.fail("arithmetic is not mapped; only a negative number may follow '-'"),
            },
            Token::Open => {
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return self.fail("a '(' is never closed");
                }
                self.next += 1;
                Ok(inner)
            }
            Token::Name(name) => self.call(&name),
            other => {
                self.next -= 1;
                self.fail(format!("unexpected {}", describe(&other)))
            }
        }
    }

    fn call(&mut self, name: &str) -> Result<Expr, ParseError> {
        let start = self.tokens.get(self.next - 1).map_or(0, |(at, _)| *at);
        let Some(&(function, arity)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
            self.next -= 1;
            let known: Vec<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
            return self.fail(format!(
                "'{name}' is not a function this server maps (it maps {})",
                known.join(", ")
            ));
        };
        if self.peek() != Some(&Token::Open) {
            return self.fail(format!("{function} needs its arguments in parentheses"));
        }
        self.next += 1;
        let mut args = Vec::new();
        if self.peek() != Some(&Token::Close) {
            loop {
                args.push(self.or()?);
                if self.peek() == Some(&Token::Comma) {
                    self.next += 1;
                    continue;
                }
                break;
            }
        }
        if self.peek() != Some(&Token::Close) {
            return self.fail(format!("{function}( is never closed"));
        }
        self.next += 1;
        if args.len() != arity {
            return Err(ParseError {
                at: start,
                problem: format!("{function}() takes {arity} argument(s), not {}", args.len()),
            });
        }
        Ok(Expr::Call(function, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Box<Expr> {
        Box::new(Expr::Field(name.into()))
    }

    #[test]
    fn comparisons_and_connectives_bind_as_in_xpath() {
        let parsed = parse("${a} = 'x' or ${b} >= 16 and not(${c})").unwrap();
        assert_eq!(
            parsed,
            Expr::Or(
                Box::new(Expr::Compare(
                    field("a"),
                    Op::Eq,
                    Box::new(Expr::Text("x".into()))
                )),
                Box::new(Expr::And(
                    Box::new(Expr::Compare(
                        field("b"),
                        Op::Ge,
                        Box::new(Expr::Number(16.0))
                    )),
                    Box::new(Expr::Call("not", vec![Expr::Field("c".into())])),
                )),
            )
        );
    }

    #[test]
    fn the_answer_itself_functions_and_negative_numbers() {
        assert_eq!(
            parse(". > -1.5 and string-length(.) <= 11").unwrap(),
            Expr::And(
                Box::new(Expr::Compare(
                    Box::new(Expr::Current),
                    Op::Gt,
                    Box::new(Expr::Number(-1.5))
                )),
                Box::new(Expr::Compare(
                    Box::new(Expr::Call("string-length", vec![Expr::Current])),
                    Op::Le,
                    Box::new(Expr::Number(11.0))
                )),
            )
        );
        assert_eq!(
            parse("regex(., \"^[0-9]{6}$\")").unwrap(),
            Expr::Call(
                "regex",
                vec![Expr::Current, Expr::Text("^[0-9]{6}$".into())]
            )
        );
        assert_eq!(parse(".5 < .").unwrap(), parse("0.5 < .").unwrap());
    }

    #[test]
    fn what_is_not_mapped_is_named_with_its_place() {
        for (text, at, words) in [
            ("${a} + 1 > 3", 5, "'+' is not understood"),
            ("${a} = 'x", 7, "never closed"),
            ("concat(${a}, 'x') = 'y'", 0, "'concat' is not a function"),
            ("selected(${a})", 0, "takes 2 argument"),
            ("${a} = ", 7, "ends too soon"),
            ("(${a} = 1", 9, "'(' is never closed"),
            ("1 < ${a} < 3", 9, "cannot be chained"),
            ("${a} = 1 ${b}", 9, "unexpected ${b}"),
            ("/data/a = 1", 0, "'/' is not understood"),
            ("${} = 1", 0, "names no field"),
            (
                &format!("{}1{}", "(".repeat(100), ")".repeat(100)),
                64,
                "64 levels",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.problem.contains(words), "{text}: {error}");
            assert_eq!(error.at, at, "{text}: {error}");
        }
    }
}
