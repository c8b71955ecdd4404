//! AWS on loopback: moto[server] with the additions in `aws_standin.py`
//! (the CloudFront calls moto lacks, fault injection), for KMS, Secrets
//! Manager and CloudFront.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::process::output_of;

/// The stand-in's script.
pub const STANDIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/service/harness/aws_standin.py"
);

/// The stand-in on a loopback port it picked itself; stopped when dropped.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    /// `deploy_seconds`: how long a distribution shows InProgress after its
    /// key group changed.
    pub fn start(deploy_seconds: f64) -> Self {
        let mut child = Command::new("python3")
            .args([STANDIN, &deploy_seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 with moto[server] (scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        Self { port, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Creates an asymmetric signing key (`spec`: RSA_2048,
    /// ECC_NIST_P256...) through the KMS API; its ARN.
    pub fn create_kms_key(&self, spec: &str) -> String {
        let script = format!(
            "import boto3\n\
             kms = boto3.client('kms', endpoint_url='{}', region_name='us-east-1',\n\
                 aws_access_key_id='testing', aws_secret_access_key='testing')\n\
             print(kms.create_key(KeySpec='{spec}', KeyUsage='SIGN_VERIFY')['KeyMetadata']['Arn'])",
            self.url("")
        );
        output_of(Command::new("python3").args(["-c", &script]))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
