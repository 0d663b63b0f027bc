//! Refusing numbers that canonicalisation would change.
//!
//! RFC 8785 §3.2.2.3 writes every number as the shortest decimal that
//! reads back as the same IEEE 754 double (the ECMAScript
//! `Number.prototype.toString` algorithm). A literal whose value has no
//! double — `0.1000000000000000055511151231257827`, `1e400`,
//! `9007199254740993` — would come out of canonicalisation as a
//! *different number*, and the ledger would record something the client
//! never sent. Such literals are refused; a client that needs them sends a
//! string.
//!
//! The check needs the literal text. serde_json only exposes it with its
//! `arbitrary_precision` feature, which is workspace-wide (features are
//! unified) and changes how every crate's numbers behave, and no other
//! crate hands out literals without it. So this small scanner walks the raw
//! input itself: it skips strings, and checks every number token it finds.
//! It does not validate JSON; serde_json does that afterwards.

use super::{EntryError, clip};

/// Checks every number token outside strings in `input`.
///
/// The rule: a literal must have exactly the decimal value of the
/// canonical form of its nearest double. `1.0`, `1e2`, `0.1` and `-0` pass
/// (only the spelling changes; JCS writes `-0` as `0`, and the sign of zero
/// is ignored here). `1e400` (no finite double), `1e-400` (rounds to zero),
/// `0.1000000000000000055511151231257827` and integers beyond ±2^53 that
/// have no double, such as `9007199254740993`, do not.
///
/// Integers beyond 2^53 are judged by the same rule rather than refused
/// outright, because JCS itself writes some doubles that way (RFC 8785
/// Appendix B: `295147905179352830000`), and stored canonical bytes must
/// always read back. Typed integer fields (`index`, `parent`,
/// `source.seq`) are separately limited to 2^53.
pub fn check_numbers(input: &[u8]) -> Result<(), EntryError> {
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'"' => {
                i += 1;
                while i < input.len() {
                    match input[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let end = token_end(input, i);
                let token = &input[start..end];
                if Literal::parse(token).is_some()
                    && exact_value(token, &mut ryu_js::Buffer::new()).is_none()
                {
                    return Err(EntryError::LossyNumber {
                        literal: clip(&String::from_utf8_lossy(token), 64),
                        offset: start,
                    });
                }
                i = end.max(start + 1);
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// End of the run of bytes that can belong to a number token.
fn token_end(input: &[u8], mut i: usize) -> usize {
    while i < input.len() && matches!(input[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
        i += 1;
    }
    i
}

/// A number literal split per the RFC 8259 §6 grammar.
struct Literal<'a> {
    negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    /// `None` when there is no exponent part.
    exp: Option<i64>,
}

/// Exponents are clamped to this magnitude; anything beyond it is far
/// outside the range of doubles either way.
const EXP_CLAMP: i64 = 1_000_000_000;

impl<'a> Literal<'a> {
    /// Splits a token; `None` if it is not a well-formed JSON number (the
    /// JSON parser reports that).
    fn parse(tok: &'a [u8]) -> Option<Literal<'a>> {
        let (negative, rest) = match tok.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, tok),
        };
        let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let (int, mut rest) = rest.split_at(int_len);
        if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
            return None;
        }
        let mut frac: &[u8] = &[];
        if let Some((b'.', r)) = rest.split_first() {
            let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            (frac, rest) = r.split_at(n);
        }
        let mut exp = None;
        if let Some((b'e' | b'E', r)) = rest.split_first() {
            let (neg, r) = match r.split_first() {
                Some((b'-', r)) => (true, r),
                Some((b'+', r)) => (false, r),
                _ => (false, r),
            };
            let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let digits;
            (digits, rest) = r.split_at(n);
            let mut e: i64 = 0;
            for d in digits {
                e = (e * 10 + i64::from(d - b'0')).min(EXP_CLAMP);
            }
            exp = Some(if neg { -e } else { e });
        }
        if !rest.is_empty() {
            return None;
        }
        Some(Literal {
            negative,
            int,
            frac,
            exp,
        })
    }

    /// The significant digits of `int ‖ frac`, as a range into that
    /// concatenation without leading or trailing zeros, and the decimal
    /// point's place: the value is `±0.DIGITS × 10^point`. `None` for zero,
    /// whatever its sign.
    fn significant(&self) -> Option<(std::ops::Range<usize>, i64)> {
        let len = self.int.len() + self.frac.len();
        let lead = (0..len).take_while(|&i| self.digit(i) == b'0').count();
        if lead == len {
            return None;
        }
        let trail = (0..len)
            .rev()
            .take_while(|&i| self.digit(i) == b'0')
            .count();
        // Lengths are bounded by the input size, so these cannot overflow.
        let int_len = i64::try_from(self.int.len()).unwrap_or(i64::MAX / 2);
        let lead_len = i64::try_from(lead).unwrap_or(0);
        Some((
            lead..len - trail,
            int_len + self.exp.unwrap_or(0) - lead_len,
        ))
    }

    /// Digit `i` of `int ‖ frac`.
    fn digit(&self, i: usize) -> u8 {
        match self.int.get(i) {
            Some(&d) => d,
            None => self.frac[i - self.int.len()],
        }
    }

    /// Whether two literals have the same decimal value (zero equal to
    /// minus zero), compared digit by digit without building either.
    fn same_value(&self, other: &Literal<'_>) -> bool {
        match (self.significant(), other.significant()) {
            (None, None) => true,
            (Some((a, pa)), Some((b, pb))) => {
                self.negative == other.negative
                    && pa == pb
                    && a.len() == b.len()
                    && a.zip(b).all(|(i, j)| self.digit(i) == other.digit(j))
            }
            _ => false,
        }
    }
}

/// The double nearest a JSON number literal and its RFC 8785 spelling,
/// when the literal is well formed and its decimal value is exactly that
/// spelling's (the rule of [`check_numbers`]); `None` otherwise. The
/// spelling is what ECMAScript's `Number.prototype.toString` writes
/// (RFC 8785 §3.2.2.3), from `ryu-js`, the same function the canonical
/// writer uses, so the check and the output cannot drift apart.
pub(super) fn exact_value<'b>(token: &[u8], buf: &'b mut ryu_js::Buffer) -> Option<(f64, &'b str)> {
    let literal = Literal::parse(token)?;
    let value = std::str::from_utf8(token).ok()?.parse::<f64>().ok()?;
    if !value.is_finite() {
        return None;
    }
    let canonical = buf.format_finite(value);
    let spelled = Literal::parse(canonical.as_bytes())?;
    literal.same_value(&spelled).then_some((value, canonical))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        check_numbers(s.as_bytes()).is_ok()
    }

    #[test]
    fn spelling_changes_are_fine() {
        for s in [
            "0",
            "-0",
            "-0.0",
            "1.0",
            "1e2",
            "1E+2",
            "0.1",
            "1.5",
            "100e-2",
            "0e999999999999999999999",
        ] {
            assert!(ok(s), "{s}");
        }
    }

    #[test]
    fn value_changes_are_refused() {
        for s in [
            "1e-400",
            "1.00000000000000001",
            "2e308",
            "-9007199254740993",
        ] {
            assert!(!ok(s), "{s}");
        }
    }

    #[test]
    fn malformed_tokens_are_left_to_the_parser() {
        for s in ["-", "01", "1.", ".5", "1e", "1e+", "--1", "1-2"] {
            assert!(ok(s), "{s}");
        }
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        assert!(ok(r#"["\"1e400"]"#));
        assert!(!ok(r#"["\\",1e400]"#));
    }
}
