//! Exact decimals for `--sql`: a big integer and a scale, so `price *
//! qty` and `sum(amount)` keep every digit, as PostgreSQL's `numeric`
//! does. Division and averages round the way PostgreSQL does (its
//! `select_div_scale`: at least 16 significant digits, never fewer
//! fractional digits than either operand), so a query run here and the
//! same query run in PostgreSQL give the same digits.

use std::cmp::Ordering;

use num_bigint::{BigInt, Sign};
use num_traits::{Signed, ToPrimitive, Zero};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dec {
    /// The value times 10^scale.
    pub m: BigInt,
    pub scale: u32,
}

fn pow10(n: u32) -> BigInt {
    BigInt::from(10u32).pow(n)
}

impl Dec {
    pub fn from_i64(v: i64) -> Dec {
        Dec { m: BigInt::from(v), scale: 0 }
    }

    pub fn from_u64(v: u64) -> Dec {
        Dec { m: BigInt::from(v), scale: 0 }
    }

    /// Canonical decimal text (`-12.340`); `None` for NaN and infinities,
    /// which arithmetic here does not take.
    pub fn parse(s: &str) -> Option<Dec> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        // Exponent form (1.5e3), as JSON numbers may be written.
        let (body, exp) = match body.split_once(['e', 'E']) {
            Some((b, e)) => (b, e.parse::<i32>().ok()?),
            None => (body, 0),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = format!("{int}{frac}");
        let mut m: BigInt = if digits.is_empty() { BigInt::zero() } else { digits.parse().ok()? };
        let mut scale = frac.len() as i64 - exp as i64;
        if scale < 0 {
            m *= pow10((-scale) as u32);
            scale = 0;
        }
        if scale > 100_000 {
            return None;
        }
        if neg {
            m = -m;
        }
        Some(Dec { m, scale: scale as u32 })
    }

    pub fn is_zero(&self) -> bool {
        self.m.is_zero()
    }

    /// The same value written with `scale` fractional digits (more only).
    fn widened(&self, scale: u32) -> BigInt {
        &self.m * pow10(scale - self.scale)
    }

    pub fn add(&self, o: &Dec) -> Dec {
        let s = self.scale.max(o.scale);
        Dec { m: self.widened(s) + o.widened(s), scale: s }
    }

    pub fn sub(&self, o: &Dec) -> Dec {
        let s = self.scale.max(o.scale);
        Dec { m: self.widened(s) - o.widened(s), scale: s }
    }

    pub fn mul(&self, o: &Dec) -> Dec {
        Dec { m: &self.m * &o.m, scale: self.scale + o.scale }
    }

    pub fn neg(&self) -> Dec {
        Dec { m: -&self.m, scale: self.scale }
    }

    /// `self / o` at PostgreSQL's result scale; `None` when `o` is zero.
    pub fn div(&self, o: &Dec) -> Option<Dec> {
        if o.is_zero() {
            return None;
        }
        let r = div_scale(self, o);
        Some(self.div_at(o, r))
    }

    /// `self / o` rounded half away from zero to `r` fractional digits.
    pub fn div_at(&self, o: &Dec, r: u32) -> Dec {
        // self/o = m1·10^s2 / (m2·10^s1); one digit more, then round it.
        let n = &self.m * pow10(o.scale + r + 1);
        let d = &o.m * pow10(self.scale);
        let q = n / d;
        Dec { m: round_last_digit(q), scale: r }
    }

    /// The remainder of truncating division, as PostgreSQL's `%` on numeric.
    pub fn rem(&self, o: &Dec) -> Option<Dec> {
        if o.is_zero() {
            return None;
        }
        let s = self.scale.max(o.scale);
        Some(Dec { m: self.widened(s) % o.widened(s), scale: s })
    }

    /// Rounded half away from zero to `scale` fractional digits (or
    /// padded with zeros).
    pub fn rescale(&self, scale: u32) -> Dec {
        match scale.cmp(&self.scale) {
            Ordering::Equal => self.clone(),
            Ordering::Greater => Dec { m: self.widened(scale), scale },
            Ordering::Less => {
                let q = &self.m / pow10(self.scale - scale - 1);
                Dec { m: round_last_digit(q), scale }
            }
        }
    }

    /// Digits before the decimal point (0 for |x| < 1).
    pub fn integer_digits(&self) -> u32 {
        let int = self.m.abs() / pow10(self.scale);
        if int.is_zero() {
            0
        } else {
            int.to_string().len() as u32
        }
    }

    pub fn to_i64(&self) -> Option<i64> {
        // Casting to an integer rounds (PostgreSQL: half away from zero).
        self.rescale(0).m.to_i64()
    }

    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Truncated toward zero to a whole number.
    pub fn trunc(&self) -> BigInt {
        &self.m / pow10(self.scale)
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, o: &Dec) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Dec {
    fn cmp(&self, o: &Dec) -> Ordering {
        let s = self.scale.max(o.scale);
        self.widened(s).cmp(&o.widened(s))
    }
}

impl std::fmt::Display for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let neg = self.m.sign() == Sign::Minus;
        let digits = self.m.abs().to_string();
        let s = self.scale as usize;
        let (int, frac) = if digits.len() > s { digits.split_at(digits.len() - s) } else { ("", digits.as_str()) };
        let int = if int.is_empty() { "0" } else { int };
        let sign = if neg { "-" } else { "" };
        if s == 0 {
            write!(f, "{sign}{int}")
        } else {
            write!(f, "{sign}{int}.{}{frac}", "0".repeat(s - frac.len()))
        }
    }
}

/// `q` (one digit too many) rounded half away from zero to drop its last digit.
fn round_last_digit(q: BigInt) -> BigInt {
    let neg = q.sign() == Sign::Minus;
    let a: BigInt = (q.abs() + 5u32) / 10u32;
    if neg {
        -a
    } else {
        a
    }
}

/// PostgreSQL's weight and first digit of a numeric in base 10000:
/// |x| = first · 10000^weight + smaller digits.
fn base10000_lead(x: &Dec) -> (i64, u32) {
    let digits = x.m.abs().to_string();
    let s = x.scale as usize;
    let (int, frac) = if digits.len() > s { digits.split_at(digits.len() - s) } else { ("", digits.as_str()) };
    let int = int.trim_start_matches('0');
    if !int.is_empty() {
        let lead = match int.len() % 4 {
            0 => 4,
            n => n,
        };
        return ((int.len() as i64 - 1) / 4, int[..lead].parse().unwrap_or(0));
    }
    let frac = format!("{}{frac}", "0".repeat(s - frac.len()));
    for (i, chunk) in frac.as_bytes().chunks(4).enumerate() {
        let mut g = String::from_utf8_lossy(chunk).into_owned();
        while g.len() < 4 {
            g.push('0');
        }
        let v: u32 = g.parse().unwrap_or(0);
        if v != 0 {
            return (-(i as i64) - 1, v);
        }
    }
    (0, 0)
}

/// The scale PostgreSQL gives `a / b` (numeric.c `select_div_scale`).
pub fn div_scale(a: &Dec, b: &Dec) -> u32 {
    const MIN_SIG_DIGITS: i64 = 16;
    let (w1, d1) = base10000_lead(a);
    let (w2, d2) = base10000_lead(b);
    let mut qweight = w1 - w2;
    if d1 <= d2 {
        qweight -= 1;
    }
    let r = (MIN_SIG_DIGITS - qweight * 4).max(a.scale as i64).max(b.scale as i64).max(0).min(1000);
    r as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn arithmetic_keeps_every_digit() {
        assert_eq!(d("12.34").add(&d("0.006")).to_string(), "12.346");
        assert_eq!(d("12.34").mul(&d("3")).to_string(), "37.02");
        assert_eq!(d("-0.5").mul(&d("0.5")).to_string(), "-0.25");
        assert_eq!(d("99999999999999999999999999.99").add(&d("0.01")).to_string(), "100000000000000000000000000.00");
        assert_eq!(d("1.5e3").to_string(), "1500");
        assert_eq!(d("7").rem(&d("2.5")).unwrap().to_string(), "2.0");
    }

    #[test]
    fn division_rounds_like_postgresql() {
        // SELECT 1::numeric / 3, 10::numeric / 4, 2.50 / 3, 100000 / 7.0, 1 / 30000.0
        assert_eq!(d("1").div(&d("3")).unwrap().to_string(), "0.33333333333333333333");
        assert_eq!(d("10").div(&d("4")).unwrap().to_string(), "2.5000000000000000");
        assert_eq!(d("2.50").div(&d("3")).unwrap().to_string(), "0.83333333333333333333");
        assert_eq!(d("100000").div(&d("7.0")).unwrap().to_string(), "14285.714285714286");
        assert_eq!(d("1").div(&d("30000.0")).unwrap().to_string(), "0.000033333333333333333333");
        assert_eq!(d("-2").div(&d("3")).unwrap().to_string(), "-0.66666666666666666667");
        assert!(d("1").div(&d("0.00")).is_none());
    }

    #[test]
    fn rescaling_rounds_half_away_from_zero() {
        assert_eq!(d("2.345").rescale(2).to_string(), "2.35");
        assert_eq!(d("-2.345").rescale(2).to_string(), "-2.35");
        assert_eq!(d("2.3").rescale(3).to_string(), "2.300");
        assert_eq!(d("0.5").to_i64(), Some(1));
        assert_eq!(d("123.45").integer_digits(), 3);
        assert!(d("1.10") == d("1.10") && d("1.1").cmp(&d("1.10")) == Ordering::Equal);
    }
}
