//! The raw arguments as the engine's values, checked: repositories opened with the
//! terminal's questions, image names validated, thread counts defaulted.

use super::args::{DigestArg, ImageArg, ImportArgs, RepoArg, RestoreArgs, SaveArgs, Tuning};
use crate::interact::TerminalUi;
use anyhow::Result;
use lifeboat_engine::{ImageName, Repository, RestoreOptions, SaveOptions};

/// What `--repo` takes for one image stream on standard input or output.
pub const STREAM: &str = "-";

impl RepoArg {
    /// True for `--repo -`.
    pub fn is_stream(&self) -> bool {
        self.repo == STREAM
    }

    /// Opens the repository (asking on the terminal for what a network one needs).
    pub fn open(&self) -> Result<Repository> {
        Ok(lifeboat_remote::open(&self.repo, &TerminalUi)?)
    }
}

impl DigestArg {
    /// The digest, or clap's usage error (exit 2) unless it is 64 hexadecimal digits.
    pub fn validated(&self) -> Option<String> {
        let d = self.digest.as_ref()?;
        if d.len() != 64 || !d.bytes().all(|c| c.is_ascii_hexdigit()) {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                rust_i18n::t!("cmd.digest_invalid").to_string() + "\n",
            )
            .exit()
        }
        Some(d.clone())
    }
}

impl ImageArg {
    /// The image name, checked.
    pub fn name(&self) -> Result<ImageName> {
        Ok(ImageName::new(&self.image)?)
    }
}

impl Tuning {
    /// Worker threads: `--threads`, else every core; at least one.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1)
    }
}

impl SaveArgs {
    /// The engine's options for saving these disks (and only `parts`, if any).
    pub fn options(&self, parts: Vec<u32>) -> Result<SaveOptions> {
        let mut opts = SaveOptions::new(self.image.name()?, self.disk.clone());
        opts.parts = parts;
        opts.split_size = self.split_size;
        opts.level = self.level;
        opts.threads = self.tuning.threads();
        if self.encrypt {
            let p = crate::secret::get(self.image.passphrase_file.as_deref(), true)
                .map_err(lifeboat_engine::EngineError::Passphrase)?;
            opts.encrypt = Some(p);
        } else if self.image.passphrase_file.is_some() {
            clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "--passphrase-file goes with --encrypt when saving\n",
            )
            .exit()
        }
        Ok(opts)
    }
}

impl ImportArgs {
    /// The engine's options for the new image of an import.
    pub fn options(&self) -> Result<SaveOptions> {
        let mut opts = SaveOptions::new(ImageName::new(&self.as_name)?, Vec::new());
        opts.split_size = self.split_size;
        opts.level = self.level;
        opts.threads = self.tuning.threads();
        if self.encrypt {
            let p = crate::secret::get(self.passphrase_file.as_deref(), true)
                .map_err(lifeboat_engine::EngineError::Passphrase)?;
            opts.encrypt = Some(p);
        } else if self.passphrase_file.is_some() {
            clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "--passphrase-file goes with --encrypt\n",
            )
            .exit()
        }
        Ok(opts)
    }
}

impl ImageArg {
    /// Where the passphrase comes from, should the image be encrypted.
    pub fn passphrase(&self) -> lifeboat_engine::PassphraseSource {
        crate::secret::source(self.passphrase_file.clone())
    }
}

impl RestoreArgs {
    /// The engine's options for restoring from a repository: `--image` is required there
    /// (a missing one is clap's usage error).
    pub fn options(&self, parts: Vec<u32>) -> Result<RestoreOptions> {
        let Some(image) = &self.image else {
            clap::Error::raw(
                clap::error::ErrorKind::MissingRequiredArgument,
                "the following required argument was not provided: --image <NAME>\n",
            )
            .exit()
        };
        let mut opts = RestoreOptions::new(ImageName::new(image)?, self.disk.clone());
        opts.parts = parts;
        opts.precheck = !self.no_precheck;
        opts.spool.dir = self.spool.clone();
        opts.spool.memory = self.spool_memory;
        opts.threads = self.tuning.threads();
        opts.passphrase = crate::secret::source(self.passphrase_file.clone());
        opts.digest = self.digest.validated();
        self.layout_options(&mut opts)?;
        Ok(opts)
    }

    /// The engine's options for restoring from a stream: the image name is optional (the
    /// stream's manifest must match it when given).
    pub fn stream_options(&self, parts: Vec<u32>) -> Result<RestoreOptions> {
        let mut opts = RestoreOptions::from_stream(self.disk.clone());
        opts.image = self.image.as_deref().map(ImageName::new).transpose()?;
        opts.parts = parts;
        opts.threads = self.tuning.threads();
        opts.passphrase = crate::secret::source(self.passphrase_file.clone());
        opts.digest = self.digest.validated();
        self.layout_options(&mut opts)?;
        Ok(opts)
    }

    /// `--grow`, `--dry-run`, `--from-disk`.
    fn layout_options(&self, opts: &mut RestoreOptions) -> Result<()> {
        opts.grow = lifeboat_engine::Grow::parse(&self.grow).unwrap_or_default();
        if !opts.parts.is_empty() && opts.grow != lifeboat_engine::Grow::None {
            clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                "--grow applies to restoredisk only (restoreparts writes into existing partitions)\n",
            )
            .exit()
        }
        opts.dry_run = self.dry_run;
        opts.from_disk = self.from_disk;
        Ok(())
    }
}
