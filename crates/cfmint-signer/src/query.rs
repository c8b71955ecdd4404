//! The CloudFront signing parameters in a URL's query string: finding them,
//! and the URL as it was before they were added.

/// Query parameters CloudFront reads as a signature rather than passing on.
pub const SIGNING_PARAMS: [&str; 5] = [
    "Expires",
    "Policy",
    "Signature",
    "Key-Pair-Id",
    "Hash-Algorithm",
];

/// A URL split into its unsigned form and its CloudFront signing parameters.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitUrl<'a> {
    /// The URL with every signing parameter removed, other parameters in order.
    pub unsigned: String,
    /// Signing parameters as (name, value), in the order they appeared.
    pub params: Vec<(&'a str, &'a str)>,
}

impl<'a> SplitUrl<'a> {
    /// The first value of a signing parameter.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Splits the signing parameters out of `url`.
pub fn split(url: &str) -> SplitUrl<'_> {
    let Some((base, query)) = url.split_once('?') else {
        return SplitUrl {
            unsigned: url.to_owned(),
            params: Vec::new(),
        };
    };
    let mut kept = Vec::new();
    let mut params = Vec::new();
    for part in query.split('&') {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        if SIGNING_PARAMS.contains(&name) {
            params.push((name, value));
        } else {
            kept.push(part);
        }
    }
    let mut unsigned = base.to_owned();
    if !kept.is_empty() {
        unsigned.push('?');
        unsigned.push_str(&kept.join("&"));
    }
    SplitUrl { unsigned, params }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_other_parameters_in_order() {
        let split =
            split("https://d.example/a.jpg?size=large&Expires=1&x=y&Signature=s&Key-Pair-Id=K");
        assert_eq!(split.unsigned, "https://d.example/a.jpg?size=large&x=y");
        assert_eq!(split.get("Expires"), Some("1"));
        assert_eq!(split.get("Key-Pair-Id"), Some("K"));
        assert_eq!(split.get("Policy"), None);
    }

    #[test]
    fn a_url_without_query_is_unchanged() {
        let split = split("https://d.example/a.jpg");
        assert_eq!(split.unsigned, "https://d.example/a.jpg");
        assert!(split.params.is_empty());
    }

    #[test]
    fn names_are_case_sensitive() {
        let split = split("https://d.example/a?expires=1");
        assert_eq!(split.unsigned, "https://d.example/a?expires=1");
        assert!(split.params.is_empty());
    }
}
