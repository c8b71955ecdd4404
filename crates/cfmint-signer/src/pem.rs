//! PEM framing: finds the one key block in a text, names its format, and
//! decodes it (constant-time base64, through `pem-rfc7468`) into buffers
//! that are wiped on drop.

use zeroize::Zeroizing;

/// The DER of a private key, by container format.
pub(crate) enum PrivateDer {
    /// `BEGIN RSA PRIVATE KEY`
    Pkcs1(Zeroizing<Vec<u8>>),
    /// `BEGIN PRIVATE KEY`
    Pkcs8(Zeroizing<Vec<u8>>),
    /// `BEGIN EC PRIVATE KEY`
    Sec1(Zeroizing<Vec<u8>>),
}

/// The DER of a public key, by container format.
pub(crate) enum PublicDer {
    /// `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo, what CloudFront's console takes)
    Spki(Vec<u8>),
    /// `BEGIN RSA PUBLIC KEY`
    Pkcs1(Vec<u8>),
}

/// Either kind of key found in a PEM text.
pub(crate) enum KeyDer {
    Private(PrivateDer),
    Public(PublicDer),
}

/// Reads a PEM text that may come from an environment variable with its
/// newlines written as `\n`. Returns the one key block in it.
pub(crate) fn decode(text: &str) -> Result<KeyDer, String> {
    let text = normalize(text);
    if text.contains("-----BEGIN ENCRYPTED") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("the PEM is encrypted; cfmint needs an unencrypted key \
                    (decrypt it with `openssl pkey -in KEY -out PLAIN.pem`)"
            .into());
    }
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start + "-----BEGIN ".len()..];
        let (label, body) = block
            .split_once("-----")
            .ok_or("a PEM BEGIN line is not closed with -----")?;
        let end_marker = format!("-----END {label}-----");
        let end = body
            .find(&end_marker)
            .ok_or_else(|| format!("the PEM block \"{label}\" has no matching END line"))?;
        blocks.push((label.to_owned(), &body[..end]));
        rest = &body[end + end_marker.len()..];
    }
    // `openssl ecparam -genkey` writes an EC PARAMETERS block before the key.
    blocks.retain(|(label, _)| label != "EC PARAMETERS");
    let [(label, body)] = blocks.as_slice() else {
        return Err(match blocks.len() {
            0 => "no PEM block found (expected -----BEGIN PRIVATE KEY----- or similar)".into(),
            n => format!("found {n} PEM blocks; put one key in each file or variable"),
        });
    };
    let der = decode_body(label, body).map_err(|e| format!("the PEM block \"{label}\" {e}"))?;
    Ok(match label.as_str() {
        "RSA PRIVATE KEY" => KeyDer::Private(PrivateDer::Pkcs1(der)),
        "PRIVATE KEY" => KeyDer::Private(PrivateDer::Pkcs8(der)),
        "EC PRIVATE KEY" => KeyDer::Private(PrivateDer::Sec1(der)),
        "PUBLIC KEY" => KeyDer::Public(PublicDer::Spki(der.to_vec())),
        "RSA PUBLIC KEY" => KeyDer::Public(PublicDer::Pkcs1(der.to_vec())),
        "OPENSSH PRIVATE KEY" => {
            return Err("OpenSSH key format is not supported; convert it with \
                        `ssh-keygen -p -m PKCS8 -f KEY`"
                .into());
        }
        "CERTIFICATE" => {
            return Err(
                "this is a certificate, not a key; CloudFront takes a bare public key".into(),
            );
        }
        other => return Err(format!("unsupported PEM block \"{other}\"")),
    })
}

/// Turns `\n` escapes into newlines and drops carriage returns, in one
/// buffer that is wiped on drop (no unwiped intermediate copies).
fn normalize(text: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\\' if chars.peek() == Some(&'n') => {
                chars.next();
                out.push('\n');
            }
            c => out.push(c),
        }
    }
    out
}

/// Decodes one block's body through `pem-rfc7468`, whose base64 is
/// constant-time. The body is first re-wrapped at 64 columns so keys with
/// other line lengths (or none) read as RFC 7468's strict form requires.
fn decode_body(label: &str, body: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    if body.lines().any(|line| line.contains(':')) {
        return Err("has PEM headers, which cfmint does not read".into());
    }
    let base64: Zeroizing<Vec<u8>> =
        Zeroizing::new(body.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    if base64.is_empty() {
        return Err("is empty".into());
    }
    let mut strict = Zeroizing::new(Vec::with_capacity(base64.len() + base64.len() / 64 + 80));
    strict.extend_from_slice(b"-----BEGIN ");
    strict.extend_from_slice(label.as_bytes());
    strict.extend_from_slice(b"-----\n");
    for line in base64.chunks(pem_rfc7468::BASE64_WRAP_WIDTH) {
        strict.extend_from_slice(line);
        strict.push(b'\n');
    }
    strict.extend_from_slice(b"-----END ");
    strict.extend_from_slice(label.as_bytes());
    strict.extend_from_slice(b"-----\n");
    let (_, der) = pem_rfc7468::decode_vec(&strict).map_err(|e| match e {
        pem_rfc7468::Error::Base64(_) => "is not valid base64".to_owned(),
        other => format!("is not valid PEM ({other})"),
    })?;
    Ok(Zeroizing::new(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PKCS8: &str = include_str!("../tests/fixtures/cloudfront-sep/test-rsa-key.pem");

    fn describe(result: Result<KeyDer, String>) -> String {
        match result {
            Ok(KeyDer::Private(PrivateDer::Pkcs1(_))) => "pkcs1".into(),
            Ok(KeyDer::Private(PrivateDer::Pkcs8(_))) => "pkcs8".into(),
            Ok(KeyDer::Private(PrivateDer::Sec1(_))) => "sec1".into(),
            Ok(KeyDer::Public(PublicDer::Spki(_))) => "spki".into(),
            Ok(KeyDer::Public(PublicDer::Pkcs1(_))) => "pkcs1-public".into(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn reads_a_key_with_escaped_newlines_from_an_environment_variable() {
        let escaped = RSA_PKCS8.trim().replace('\n', "\\n");
        assert_eq!(describe(decode(&escaped)), "pkcs8");
    }

    #[test]
    fn reads_crlf_and_text_around_the_block() {
        let text = format!(
            "comment before\r\n{}\r\ntrailing",
            RSA_PKCS8.replace('\n', "\r\n")
        );
        assert_eq!(describe(decode(&text)), "pkcs8");
    }

    #[test]
    fn reads_any_line_length_and_decodes_the_same_bytes() {
        let expected = match decode(RSA_PKCS8) {
            Ok(KeyDer::Private(PrivateDer::Pkcs8(der))) => der,
            _ => panic!("the fixture is PKCS#8"),
        };
        let body: String = RSA_PKCS8
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        for width in [body.len(), 76, 17] {
            let lines: Vec<&str> = body
                .as_bytes()
                .chunks(width)
                .map(|chunk| std::str::from_utf8(chunk).unwrap())
                .collect();
            let text = format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            );
            match decode(&text) {
                Ok(KeyDer::Private(PrivateDer::Pkcs8(der))) => assert_eq!(*der, *expected),
                other => panic!("width {width}: {}", describe(other)),
            }
        }
    }

    #[test]
    fn skips_ec_parameters_before_a_sec1_key() {
        let text = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(describe(decode(text)), "sec1");
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            ("", "no PEM block"),
            ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "no matching END"),
            (
                "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----",
                "not valid base64",
            ),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END RSA PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                "certificate",
            ),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----",
                "OpenSSH",
            ),
        ];
        for (text, expected) in cases {
            let described = describe(decode(text));
            assert!(described.contains(expected), "{text:?} gave {described}");
        }
        let two = format!("{RSA_PKCS8}\n{RSA_PKCS8}");
        assert!(describe(decode(&two)).contains("2 PEM blocks"));
    }
}
