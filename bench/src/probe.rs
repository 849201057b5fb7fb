//! `revocation-probe`: one microservice that verifies Tessera's tokens with the
//! verifier crate and its revocation subscription, driven by `tessera-bench --only
//! feed` over stdin/stdout.
//!
//! Arguments: Tessera's base URL and issuer; the subscriber's client id and secret
//! come in the environment (`PROBE_CLIENT_ID`, `PROBE_CLIENT_SECRET`). Prints `ready`
//! once the first snapshot is in. Reads lines `watch <n> <token>` (the token is
//! verified at once and must be accepted), then checks every watched token against
//! the set every millisecond, as a service would on its next request, and prints
//! `revoked <n> <unix nanoseconds>` the first time one is refused.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tessera_verifier::{Claims, RevocationConfig, Verifier, VerifierConfig, VerifyError};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(issuer)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: revocation-probe <tessera url> <issuer>");
    };
    let id = std::env::var("PROBE_CLIENT_ID")?;
    let secret = std::env::var("PROBE_CLIENT_SECRET")?;
    let verifier = Verifier::new(
        VerifierConfig::new(&issuer, &issuer)
            .jwks_url(format!("{url}/.well-known/jwks.json"))
            .allow_plain_http(true)
            .revocations(RevocationConfig::new(id, secret).url(&url)),
    )?;
    anyhow::ensure!(
        verifier.revocations_ready(Duration::from_secs(10)).await,
        "no snapshot within 10 s"
    );
    println!("ready");
    std::io::stdout().flush()?;

    let mut watched: Vec<(u64, Claims)> = Vec::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut out = std::io::stdout().lock();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                let mut parts = line.split(' ');
                if let (Some("watch"), Some(n), Some(token)) = (parts.next(), parts.next(), parts.next()) {
                    let claims = verifier.verify(token).await?;
                    watched.push((n.parse()?, claims));
                }
            }
            _ = tick.tick() => {
                let mut i = 0;
                while i < watched.len() {
                    match verifier.check_revocation(&watched[i].1) {
                        Err(VerifyError::Revoked) => {
                            let at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
                            writeln!(out, "revoked {} {at}", watched[i].0)?;
                            out.flush()?;
                            watched.swap_remove(i);
                        }
                        _ => i += 1,
                    }
                }
            }
        }
    }
}
