//! CloudFront's URL-safe base64: the standard alphabet with `+`→`-`, `/`→`~`
//! and the padding `=` written as `_`.

use base64::Engine;
use base64::alphabet::Alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::error::{Error, ErrorKind};

const PAD: u8 = b'_';

const ENGINE: GeneralPurpose = {
    let alphabet =
        match Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~") {
            Ok(alphabet) => alphabet,
            Err(_) => panic!("the CloudFront alphabet is valid"),
        };
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone);
    GeneralPurpose::new(&alphabet, config)
};

/// Encodes bytes the way CloudFront expects them in cookies and query strings.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    encode_into(bytes, &mut out);
    out
}

/// Appends the CloudFront encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    ENGINE.encode_string(bytes, out);
    let padding = (3 - bytes.len() % 3) % 3;
    out.extend(std::iter::repeat_n(PAD as char, padding));
}

/// Decodes CloudFront base64. Padding is optional, but when present it must be
/// the right length; anything outside the alphabet is an error.
///
/// ```
/// use cfmint_signer::{decode_base64, encode_base64};
///
/// assert_eq!(encode_base64(b"\xfb\xff"), "-~8_");
/// assert_eq!(decode_base64("-~8_")?, b"\xfb\xff");
/// assert!(decode_base64("+/8=").is_err());
/// # Ok::<(), cfmint_signer::Error>(())
/// ```
pub fn decode(text: &str) -> Result<Vec<u8>, Error> {
    let body = text.trim_end_matches(PAD as char);
    let padding = text.len() - body.len();
    if padding > 0 && !(body.len() + padding).is_multiple_of(4) {
        return Err(Error::new(
            ErrorKind::InvalidEncoding,
            "CloudFront base64 with the wrong amount of _ padding",
        ));
    }
    ENGINE.decode(body).map_err(|e| {
        Error::new(
            ErrorKind::InvalidEncoding,
            format!("not CloudFront base64 ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_cloudfront_substitutions_for_plus_slash_and_padding() {
        // 0xfb 0xff encodes to "+/8=" in standard base64.
        assert_eq!(encode(&[0xfb, 0xff]), "-~8_");
        assert_eq!(decode("-~8_").unwrap(), vec![0xfb, 0xff]);
    }

    #[test]
    fn decodes_with_or_without_padding() {
        assert_eq!(decode("YQ__").unwrap(), b"a");
        assert_eq!(decode("YQ").unwrap(), b"a");
    }

    #[test]
    fn rejects_standard_alphabet_and_wrong_padding() {
        assert!(decode("+/8=").is_err());
        assert!(decode("YQ_").is_err());
        assert!(decode("YQ___").is_err());
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..64u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }
}
