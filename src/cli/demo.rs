//! `cfmint demo`: the signer end to end with a throwaway key, on loopback only.

use clap::Args;

use super::{CliError, Outcome, now, print, rfc3339};
use crate::signer::{
    self, Backend, HashAlgorithm, KeyPairId, KeySource, KeySpec, Policy, PolicyForm, PrivateKey,
    PublicKeys, ViewerRequest,
};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Key type for the throwaway key.
    #[arg(long, default_value = "rsa", value_parser = ["rsa", "ecdsa"])]
    key_type: String,
}

const BASE: &str = "https://cdn.cfmint.test";

pub fn run(args: DemoArgs, backend: Backend) -> Result<Outcome, CliError> {
    let spec = if args.key_type == "ecdsa" {
        KeySpec::EcdsaP256
    } else {
        KeySpec::Rsa { bits: 2048 }
    };
    let id = KeyPairId::new("KDEMOTHROWAWAY")?;
    let generated = backend.generate(spec)?;
    let key = PrivateKey::from_pem(id, &generated.private_pem, KeySource::Inline, backend)?;
    let keys = PublicKeys::new(vec![key.public_key()?])?;
    let expires = now() + 600;
    let policy = Policy::builder(format!("{BASE}/audiobooks/42/*"))
        .expires(expires)
        .build()?;
    let signed = key.sign(&policy, PolicyForm::Auto, HashAlgorithm::Sha1)?;

    let mut out = format!(
        "Throwaway {} key {} ({backend} backend), policy for {} until {}\n\n",
        key.algorithm(),
        key.id(),
        policy.resource(),
        rfc3339(expires)
    );
    out.push_str("Set-Cookie headers cfmint would send:\n");
    for (name, value) in signed.cookies() {
        out.push_str(&format!(
            "  Set-Cookie: {name}={value}; Path=/; Secure; HttpOnly; SameSite=None\n"
        ));
    }
    let cookie_header = signed.cookie_header();
    out.push_str("\nWhat CloudFront would answer with those cookies:\n");
    for url in [
        format!("{BASE}/audiobooks/42/chapter-1.m3u8"),
        format!("{BASE}/audiobooks/42/chapter-1/seg-003.aac"),
        format!("{BASE}/audiobooks/43/chapter-1.m3u8"),
    ] {
        let verdict = signer::verify(
            &keys,
            &ViewerRequest {
                url: &url,
                cookie_header: Some(&cookie_header),
                client_ip: None,
                now: now(),
            },
        );
        let answer = match verdict.result {
            Ok(()) => "ALLOW".to_owned(),
            Err(denial) => format!("DENY ({denial})"),
        };
        out.push_str(&format!("  GET {url}\n    -> {answer}\n"));
    }
    let pdf = format!("{BASE}/audiobooks/42/booklet.pdf");
    let url_policy = Policy::builder(pdf.clone()).expires(expires).build()?;
    let signed_url = key
        .sign(&url_policy, PolicyForm::Auto, HashAlgorithm::Sha1)?
        .apply_to_url(&pdf)?;
    out.push_str(&format!(
        "\nA signed URL (canned policy):\n  {signed_url}\n"
    ));
    print(&out);
    Ok(Outcome::Success)
}
