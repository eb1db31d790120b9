//! The one glob syntax of Sluice's configuration — identity group rules and
//! policies alike: `*` matches any run of characters (including none);
//! every other character matches itself.

/// True when `text` matches `pattern`, where `*` matches any run of
/// characters. Case-sensitive; works on characters, not bytes.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    glob_match_with(pattern, text, |p, t| p == t)
}

/// [`glob_match`] ignoring ASCII case (used for `INFORMATION_SCHEMA` view
/// names, which BigQuery treats case-insensitively).
pub fn glob_match_ignore_case(pattern: &str, text: &str) -> bool {
    glob_match_with(pattern, text, |p, t| p.eq_ignore_ascii_case(&t))
}

/// Greedy matching with backtracking to the last `*`: linear in practice,
/// O(pattern × text) at worst, never exponential.
fn glob_match_with(pattern: &str, text: &str, same: impl Fn(char, char) -> bool) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was seen and the text position it currently absorbs to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && same(pattern[p], text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_stars() {
        assert!(glob_match("abc", "abc"));
        assert!(!glob_match("abc", "abcd"));
        assert!(!glob_match("abc", "ab"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything.at.all"));
        assert!(glob_match("a*", "a"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(!glob_match("a*c", "abbbd"));
        assert!(glob_match("*-agent", "etl-agent"));
        assert!(glob_match("repo:acme/*:ref:*", "repo:acme/x:ref:main"));
        assert!(glob_match("a*b*c", "axxbyybzc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("**", "x"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn case_sensitivity() {
        assert!(!glob_match("Agent*", "agent-1"));
        assert!(glob_match_ignore_case("jobs*", "JOBS_BY_USER"));
        assert!(glob_match_ignore_case("TABLES", "tables"));
    }

    #[test]
    fn unicode_is_matched_by_character() {
        assert!(glob_match("dаta*", "dаta_x")); // Cyrillic а on both sides
        assert!(!glob_match("data*", "dаta_x")); // Latin pattern, Cyrillic text
        assert!(glob_match("é?*", "é?ü"));
    }

    #[test]
    fn backtracking_is_not_exponential() {
        let text = "a".repeat(2000);
        let pattern = format!("{}b", "*a".repeat(50));
        assert!(!glob_match(&pattern, &text));
    }
}
