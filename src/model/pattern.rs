//! Name patterns: one wildcard matcher for type rules (`*`, `?`) and DMS
//! table mappings (`%`, `_`), case-insensitive (or, for names that differ
//! by case, such as Kafka topics, exact).

/// Which characters stand for "any run" and "any one character".
#[derive(Debug, Clone, Copy)]
pub struct Wildcards {
    pub any: &'static [char],
    pub one: &'static [char],
    /// Upper and lower case match each other.
    pub fold_case: bool,
}

/// Shell style: `*` and `?`.
pub const GLOB: Wildcards = Wildcards { any: &['*'], one: &['?'], fold_case: true };
/// Shell style, case as written (Kafka topics `Orders` and `orders` differ).
pub const GLOB_EXACT_CASE: Wildcards = Wildcards { any: &['*'], one: &['?'], fold_case: false };
/// AWS DMS style, plus `*` and `?` for convenience: `%`/`*`, `_`/`?`.
pub const DMS: Wildcards = Wildcards { any: &['%', '*'], one: &['_', '?'], fold_case: true };

/// Does `text` match `pattern`? Iterative, with backtracking to the last
/// "any run" wildcard, so hostile patterns cannot blow up.
pub fn matches(pattern: &str, text: &str, w: Wildcards) -> bool {
    let fold = |s: &str| if w.fold_case { s.to_lowercase() } else { s.to_string() };
    let p: Vec<char> = fold(pattern).chars().collect();
    let t: Vec<char> = fold(text).chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (w.one.contains(&p[pi]) || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && w.any.contains(&p[pi]) {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && w.any.contains(&p[pi]) {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_styles() {
        assert!(matches("order%", "orders", DMS));
        assert!(matches("a_c", "ABC", DMS));
        assert!(!matches("order_", "orders_x", DMS));
        assert!(matches("orders.*", "ORDERS.status", GLOB));
        assert!(!matches("a*b", "ac", GLOB));
        assert!(matches("status_code", "status_code", GLOB), "an underscore is literal in globs");
        assert!(!matches("status_code", "statusXcode", GLOB));
        assert!(matches("orders.*", "orders.v1", GLOB_EXACT_CASE));
        assert!(!matches("orders.*", "ORDERS.v1", GLOB_EXACT_CASE));
    }
}
