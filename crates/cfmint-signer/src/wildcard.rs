//! CloudFront resource patterns: `*` matches any run of characters (including
//! none), `?` exactly one character; everything else matches itself.

/// True when `text` matches `pattern` in full.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        matches_units(pattern.as_bytes(), text.as_bytes(), b'*', b'?')
    } else {
        let pattern: Vec<char> = pattern.chars().collect();
        let text: Vec<char> = text.chars().collect();
        matches_units(&pattern, &text, '*', '?')
    }
}

/// Greedy matching that backtracks only to the most recent `*`: linear in
/// practice, O(n·m) at worst, never exponential.
fn matches_units<T: PartialEq + Copy>(pattern: &[T], text: &[T], star: T, any: T) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == star {
            last_star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == any || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = last_star {
            // Let the last `*` absorb one more character and retry after it.
            p = star_p + 1;
            t = star_t + 1;
            last_star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == star)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn question_mark_is_one_character_not_one_byte() {
        assert!(matches("/?", "/é"));
        assert!(matches("/?.pdf", "/ü.pdf"));
        assert!(!matches("/??", "/é"));
        assert!(matches("/é*", "/éa"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(matches(
            "https://d.example/images/*",
            "https://d.example/images/"
        ));
        assert!(matches(
            "https://d.example/images/*",
            "https://d.example/images/a/b.jpg?x=1"
        ));
        assert!(!matches(
            "https://d.example/images/*",
            "https://d.example/image.jpg"
        ));
        assert!(matches("*", ""));
        assert!(matches(
            "http*://d.example/*.m3u8",
            "https://d.example/book/1.m3u8"
        ));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(matches("/a?c", "/abc"));
        assert!(!matches("/a?c", "/ac"));
        assert!(!matches("/a?c", "/abbc"));
        assert!(matches("/é?", "/éü"));
    }

    #[test]
    fn without_wildcards_the_match_is_exact() {
        assert!(matches(
            "https://d.example/a.jpg",
            "https://d.example/a.jpg"
        ));
        assert!(!matches(
            "https://d.example/a.jpg",
            "https://d.example/a.jpg?x"
        ));
        assert!(!matches(
            "https://d.example/a.jpg",
            "https://d.example/A.jpg"
        ));
    }

    /// The definition, recursively: slow, but plainly right.
    fn reference(pattern: &[char], text: &[char]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                reference(&pattern[1..], text)
                    || (!text.is_empty() && reference(pattern, &text[1..]))
            }
            (Some('?'), Some(_)) => reference(&pattern[1..], &text[1..]),
            (Some(p), Some(t)) => p == t && reference(&pattern[1..], &text[1..]),
            _ => false,
        }
    }

    fn all_strings(alphabet: &[char], max: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..max {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn every_short_pattern_agrees_with_the_definition() {
        // A `*` retried from too early would match `a*ab` against `ab`.
        assert!(!matches("a*ab", "ab"));
        let texts = all_strings(&['a', 'b'], 5);
        for pattern in all_strings(&['a', 'b', '*', '?'], 4) {
            let p: Vec<char> = pattern.chars().collect();
            for text in &texts {
                let t: Vec<char> = text.chars().collect();
                assert_eq!(
                    matches(&pattern, text),
                    reference(&p, &t),
                    "{pattern:?} {text:?}"
                );
            }
        }
    }

    #[test]
    fn pathological_patterns_stay_fast() {
        let text = "a".repeat(10_000);
        let pattern = format!("{}b", "*a".repeat(100));
        assert!(!matches(&pattern, &text));
    }
}
