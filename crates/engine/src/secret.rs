//! Passphrases of encrypted images: where they come from, and opening an image or a stream
//! with them. The engine never stores, logs or reports a passphrase; it asks its
//! [`PassphraseSource`] only when an image turns out to be encrypted, and drops (and so wipes)
//! the answer once the keys are derived.

use crate::error::{EngineError, Result};
use lifeboat_container::seal::{Keys, OpenReader, SealHeader, SEAL_HEADER_LEN};
use lifeboat_container::ContainerError;
use lifeboat_repo::{ImageName, ImageSource, Repository};
use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// A passphrase, wiped from memory when dropped; its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Passphrase(Arc<Zeroizing<String>>);

impl Passphrase {
    /// Takes the passphrase (the `String` is moved, not copied).
    pub fn new(s: Zeroizing<String>) -> Self {
        Passphrase(Arc::new(s))
    }

    /// The passphrase bytes.
    pub fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

type Ask = dyn Fn() -> std::result::Result<Passphrase, String> + Send + Sync;

/// Where the passphrase of an encrypted image comes from (an environment variable, a file, a
/// terminal prompt: the frontend's business). Asked only when an image is encrypted, then
/// kept (wiped when the last clone of the source is dropped) until it turns out wrong; the
/// error text of `ask` (already in the operator's language) becomes
/// [`EngineError::Passphrase`].
#[derive(Clone, Default)]
pub struct PassphraseSource {
    ask: Option<Arc<Ask>>,
    kept: Arc<Mutex<Option<Passphrase>>>,
}

impl PassphraseSource {
    /// A source that calls `ask` when a passphrase is needed.
    pub fn new(
        ask: impl Fn() -> std::result::Result<Passphrase, String> + Send + Sync + 'static,
    ) -> Self {
        PassphraseSource {
            ask: Some(Arc::new(ask)),
            kept: Arc::default(),
        }
    }

    /// No source: an encrypted image is refused.
    pub fn none() -> Self {
        PassphraseSource::default()
    }

    /// The passphrase: the one kept, else asked for.
    pub fn get(&self) -> Result<Passphrase> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = kept.as_ref() {
            return Ok(p.clone());
        }
        let p = match &self.ask {
            Some(ask) => ask().map_err(EngineError::Passphrase)?,
            None => {
                return Err(EngineError::Passphrase(
                    "the image is encrypted and no passphrase was given".into(),
                ))
            }
        };
        *kept = Some(p.clone());
        Ok(p)
    }

    /// Forgets the kept passphrase (it was wrong): the next [`PassphraseSource::get`] asks.
    pub fn forget(&self) {
        *self.kept.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl std::fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassphraseSource(..)")
    }
}

/// Opens image `name` of `repo` and, when it is encrypted, unlocks it with a passphrase from
/// `pass` (a wrong one is [`ContainerError::WrongPassphrase`], a refusal).
pub fn open_image(
    repo: &Repository,
    name: &ImageName,
    pass: &PassphraseSource,
) -> Result<ImageSource> {
    let mut source = repo.open_image(name)?;
    if source.is_locked() {
        let p = pass.get()?;
        if let Err(e) = source.unlock(p.bytes()) {
            if matches!(
                e,
                lifeboat_repo::RepoError::Container(ContainerError::WrongPassphrase)
            ) {
                pass.forget();
            }
            return Err(e.into());
        }
    }
    Ok(source)
}

/// The full manifest of image `name` (for an encrypted image: unlocked with `pass`).
pub fn image_manifest(
    repo: &Repository,
    name: &ImageName,
    pass: &PassphraseSource,
) -> Result<lifeboat_container::Manifest> {
    let m = repo.read_manifest(name)?;
    if !m.is_sealed() {
        return Ok(m);
    }
    Ok(open_image(repo, name, pass)?.manifest().clone())
}

/// The plaintext container stream of an image stream: `r` itself when it is not encrypted,
/// else its checked plaintext, opened with a passphrase from `pass`.
pub(crate) fn open_stream<R: Read + Send + 'static>(
    mut r: R,
    pass: &PassphraseSource,
) -> Result<Box<dyn Read + Send>> {
    let mut head = vec![0u8; 12];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(EngineError::Damaged(format!(
                    "the image stream cannot be read: {source}"
                )))
            }
        }
    }
    head.truncate(got);
    if !lifeboat_container::seal::is_sealed(&head) {
        return Ok(Box::new(Cursor::new(head).chain(r)));
    }
    head.resize(SEAL_HEADER_LEN, 0);
    r.read_exact(&mut head[12..]).map_err(|_| {
        EngineError::Damaged("the encrypted image stream ends inside its header".into())
    })?;
    let header = SealHeader::decode(&head).map_err(stream_header)?;
    let p = pass.get()?;
    let keys = Keys::open(p.bytes(), &header).map_err(stream_header)?;
    drop(p);
    Ok(Box::new(OpenReader::new(r, Arc::new(keys))))
}

fn stream_header(e: ContainerError) -> EngineError {
    EngineError::Image {
        image: "- (standard input)".into(),
        file: String::new(),
        offset: 0,
        source: e,
    }
}
