//! A small editable token list over sqlparser's tokenizer, for the
//! rewrites that turn dialect quirks sqlparser rejects into forms it
//! accepts. Working on tokens, not regexes, keeps strings and quoted names
//! safe from accidental edits.

use sqlparser::dialect::Dialect as SqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

#[derive(Debug, Clone)]
pub struct Tokens {
    pub toks: Vec<Token>,
}

impl Tokens {
    pub fn new(dialect: &dyn SqlDialect, sql: &str) -> Option<Tokens> {
        let toks = Tokenizer::new(dialect, sql).with_unescape(false).tokenize().ok()?;
        Some(Tokens { toks })
    }

    pub fn len(&self) -> usize {
        self.toks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.toks.is_empty()
    }

    pub fn is_space(t: &Token) -> bool {
        matches!(t, Token::Whitespace(_))
    }

    /// Index of the next non-whitespace token at or after `i`.
    pub fn next_sig(&self, i: usize) -> Option<usize> {
        (i..self.toks.len()).find(|&j| !Self::is_space(&self.toks[j]))
    }

    /// Index of the previous non-whitespace token before `i`.
    pub fn prev_sig(&self, i: usize) -> Option<usize> {
        (0..i).rev().find(|&j| !Self::is_space(&self.toks[j]))
    }

    /// Is token `i` the unquoted word `w` (case-insensitive)?
    pub fn is_word(&self, i: usize, w: &str) -> bool {
        matches!(self.toks.get(i), Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
    }

    pub fn word(&self, i: usize) -> Option<&str> {
        match self.toks.get(i) {
            Some(Token::Word(w)) => Some(&w.value),
            _ => None,
        }
    }

    /// Do the significant tokens from `i` spell `words` (unquoted)?
    /// Returns the index after the last one.
    pub fn match_words(&self, i: usize, words: &[&str]) -> Option<usize> {
        let mut j = i;
        for w in words {
            let k = self.next_sig(j)?;
            if !self.is_word(k, w) {
                return None;
            }
            j = k + 1;
        }
        Some(j)
    }

    pub fn is_char(&self, i: usize, t: &Token) -> bool {
        self.toks.get(i) == Some(t)
    }

    /// Given `i` at a `(`, the index of its matching `)`.
    pub fn matching_paren(&self, i: usize) -> Option<usize> {
        let mut depth = 0i32;
        for j in i..self.toks.len() {
            match self.toks[j] {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(j);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Paren depth just before token `i` (0 at top level).
    pub fn depth_at(&self, i: usize) -> i32 {
        let mut d = 0;
        for t in &self.toks[..i.min(self.toks.len())] {
            match t {
                Token::LParen => d += 1,
                Token::RParen => d -= 1,
                _ => {}
            }
        }
        d
    }

    /// Replaces tokens `a..b` with one space.
    pub fn blank(&mut self, a: usize, b: usize) {
        let b = b.min(self.toks.len());
        if a >= b {
            return;
        }
        self.toks.splice(a..b, [Token::Whitespace(Whitespace::Space)]);
    }

    pub fn replace(&mut self, a: usize, b: usize, with: Vec<Token>) {
        let b = b.min(self.toks.len());
        self.toks.splice(a..b, with);
    }

    /// Index of the first significant token after position `from` that is
    /// at the same paren depth as `from` and is `,` or the closing `)`.
    pub fn end_of_item(&self, from: usize) -> usize {
        let mut depth = 0i32;
        for j in from..self.toks.len() {
            match self.toks[j] {
                Token::LParen => depth += 1,
                Token::RParen => {
                    if depth == 0 {
                        return j;
                    }
                    depth -= 1;
                }
                Token::Comma if depth == 0 => return j,
                _ => {}
            }
        }
        self.toks.len()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for t in &self.toks {
            s.push_str(&t.to_string());
        }
        s
    }

    pub fn render_range(&self, a: usize, b: usize) -> String {
        let mut s = String::new();
        for t in &self.toks[a.min(self.toks.len())..b.min(self.toks.len())] {
            s.push_str(&t.to_string());
        }
        s
    }
}

/// Tokens for a bare word, for rewrites that insert keywords.
pub fn words(sql: &str) -> Vec<Token> {
    let d = sqlparser::dialect::GenericDialect {};
    Tokenizer::new(&d, sql).with_unescape(false).tokenize().unwrap_or_default()
}

impl Tokens {
    /// The tokens as sqlparser's own tokenizer would have produced them
    /// (strings and quoted names unescaped), so the parser can take them
    /// directly instead of tokenizing the statement a second time.
    pub fn for_parser(&self, backslash_escapes: bool) -> Vec<Token> {
        self.clone().into_parser(backslash_escapes)
    }

    /// As [`Tokens::for_parser`], consuming the list (no copies).
    pub fn into_parser(self, backslash_escapes: bool) -> Vec<Token> {
        self.toks
            .into_iter()
            .filter(|t| !Self::is_space(t))
            .map(|t| match &t {
                Token::Word(w) => match w.quote_style {
                    Some(q) => {
                        let close = if q == '[' { ']' } else { q };
                        let doubled: String = [close, close].iter().collect();
                        if !w.value.contains(&doubled) {
                            return t;
                        }
                        let mut w = w.clone();
                        w.value = w.value.replace(&doubled, &close.to_string());
                        Token::Word(w)
                    }
                    None => t,
                },
                Token::SingleQuotedString(s) => Token::SingleQuotedString(unescape(s, '\'', backslash_escapes)),
                Token::NationalStringLiteral(s) => Token::NationalStringLiteral(unescape(s, '\'', backslash_escapes)),
                Token::DoubleQuotedString(s) => Token::DoubleQuotedString(unescape(s, '"', backslash_escapes)),
                Token::EscapedStringLiteral(s) => Token::EscapedStringLiteral(unescape(s, '\'', true)),
                _ => t,
            })
            .collect()
    }
}

/// Undoes SQL string escaping: a doubled quote, and (MySQL, `E''`)
/// backslash sequences. `\%` and `\_` keep their backslash, as MySQL does.
pub fn unescape(s: &str, quote: char, backslash: bool) -> String {
    if !s.contains(quote) && !(backslash && s.contains('\\')) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote && chars.peek() == Some(&quote) {
            chars.next();
            out.push(quote);
        } else if c == '\\' && backslash {
            match chars.next() {
                Some('0') => out.push('\0'),
                Some('b') => out.push('\u{8}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('Z') => out.push('\u{1a}'),
                Some(c @ ('%' | '_')) => {
                    out.push('\\');
                    out.push(c);
                }
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}
