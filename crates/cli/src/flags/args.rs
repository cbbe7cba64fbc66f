//! The command line as clap parses it: global flags, subcommands and their raw arguments.
//! [`super::values`] turns them into the engine's validated values.

use super::size;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Save whole disks to images and restore them — only the blocks the filesystems use are stored",
    long_about = "lifeboat saves whole disks (partition tables, boot areas and every partition) into named \
images in a repository directory, storing only the blocks that ext2/3/4 filesystems use \
(other partitions are copied whole), and restores them onto the same or a same-type machine.\n\n\
Typical use from a rescue system:\n  \
lifeboat disks\n  \
lifeboat savedisk    --repo /mnt/usb/images --image web01-2026-11-25 --disk /dev/sdb\n  \
lifeboat check       --repo /mnt/usb/images --image web01-2026-11-25\n  \
lifeboat restoredisk --repo /mnt/usb/images --image web01-2026-11-25 --disk /dev/sdc\n\n\
Exit status: 0 success, 1 failure, 2 bad arguments, 3 refused (safety check or answer 'no'; \
nothing written), 4 image damaged or incomplete, 130 cancelled.",
    after_help = "Run 'lifeboat demo' to see a save and restore of a small built-in disk."
)]
pub struct Cli {
    /// Print progress and results as JSON lines (NDJSON events) on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Language of messages and help: en or ja (default: from LC_ALL, LC_MESSAGES, LANG).
    #[arg(long, global = true, value_name = "LANG", value_parser = ["en", "ja"])]
    pub lang: Option<String>,
    /// More log output on standard error (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors: no progress display and no step messages.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also write the log (with timestamps, at least level info) to this file.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Without a command on a terminal, the guided console starts.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Clone)]
pub struct RepoArg {
    /// Repository: a directory that holds the images (e.g. a mounted USB disk), or a network
    /// address: smb://[USER@]SERVER[:PORT]/SHARE[/DIR], nfs://SERVER[:PORT]/EXPORT[/DIR],
    /// sftp://[USER@]HOST[:PORT]/PATH, s3://BUCKET[/PREFIX][?endpoint=URL&region=R].
    /// Passwords come from the environment, a credentials file (mode 0600), an SSH agent or
    /// key, or a prompt. `-` is one image stream instead of a repository: savedisk and
    /// saveparts write it to standard output, restoredisk and restoreparts read it from
    /// standard input (for ssh, nc, udp-sender/udp-receiver).
    #[arg(long, value_name = "REPO")]
    pub repo: String,
}

#[derive(Args, Clone)]
pub struct ImageArg {
    /// Image name: letters, digits and . _ - + @ (e.g. web01-2026-11-25).
    #[arg(long, value_name = "NAME")]
    pub image: String,
    /// Passphrase of an encrypted image from this file (only its owner may read it: mode
    /// 0600); else from LIFEBOAT_PASSPHRASE, else asked on the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Args, Clone)]
pub struct DigestArg {
    /// The image digest noted after the save (`lifeboat info`): fails unless the image has
    /// exactly this digest.
    #[arg(long, value_name = "HEX")]
    pub digest: Option<String>,
}

#[derive(Args, Clone)]
pub struct Tuning {
    /// Compression/decompression threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Save whole disks into a new image.
    Savedisk(SaveArgs),
    /// Save some partitions of a disk into a new image.
    Saveparts(SavePartsArgs),
    /// Restore an image onto disks, overwriting them.
    Restoredisk(RestoreArgs),
    /// Restore some partitions of an image onto existing partitions of a disk.
    Restoreparts(RestorePartsArgs),
    /// Convert a Clonezilla (or MIRACLE System Savior) image into a new lifeboat image:
    /// every file is read once, partclone's checksums are verified, only used blocks are
    /// stored.
    Import(ImportArgs),
    /// List the images in a repository (incomplete ones are marked).
    List {
        #[command(flatten)]
        repo: RepoArg,
    },
    /// Show what an image holds: disks, partition tables, filesystems, sizes.
    Info {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        image: ImageArg,
    },
    /// Read a whole image and verify every checksum, without writing anything.
    Check {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        image: ImageArg,
        #[command(flatten)]
        digest: DigestArg,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Write one saved disk, or one of its partitions, into a new sparse file (nothing is
    /// restored; the file holds the bytes as saved, zeros where nothing was stored).
    Extract {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        image: ImageArg,
        /// The disk of the image (0 = the first), as `lifeboat info` numbers them.
        #[arg(long, value_name = "N", default_value_t = 0)]
        disk: u32,
        /// Only this partition of the disk (as in /dev/sdb2 → 2); without it, the whole disk.
        #[arg(long, value_name = "N")]
        part: Option<u32>,
        /// The file to write; it must not exist yet.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
        #[command(flatten)]
        digest: DigestArg,
    },
    /// Show an image as read-only files (disk0, disk0p1, …) at a directory, until Ctrl-C or
    /// umount; mount what you need from them (e.g. mount -o loop,ro DIR/disk0p2 /mnt/c).
    #[cfg(feature = "mount")]
    Mount {
        #[command(flatten)]
        repo: RepoArg,
        #[command(flatten)]
        image: ImageArg,
        /// The directory to show the image at (an existing, empty directory).
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
        #[command(flatten)]
        digest: DigestArg,
    },
    /// Delete an image, or every incomplete image (left by saves that did not finish).
    Delete {
        #[command(flatten)]
        repo: RepoArg,
        /// The image to delete.
        #[arg(
            long,
            value_name = "NAME",
            conflicts_with = "incomplete",
            required_unless_present = "incomplete"
        )]
        image: Option<String>,
        /// Delete every incomplete image instead.
        #[arg(long)]
        incomplete: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List the disks of this machine with size, model, serial, partitions and mounts.
    Disks,
    /// Guided save and restore on the terminal (also what `lifeboat` alone starts).
    Console,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a directory.
    Manpage {
        /// Write lifeboat.1 and lifeboat-<command>.1 into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Save and restore a small built-in disk image, then verify it (no root needed).
    Demo {
        /// Keep the demo's files in this directory instead of a temporary one.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    #[command(flatten)]
    pub image: ImageArg,
    /// Disk to save: a whole disk (/dev/sdb) or a disk image file. Repeat for several disks.
    #[arg(long, value_name = "DISK", required = true)]
    pub disk: Vec<PathBuf>,
    /// Split the image into files of at most this size (e.g. 4000M for FAT32 sticks).
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size)]
    pub split_size: Option<u64>,
    /// zstd compression level (1 fastest … 19 smallest).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Encrypt and authenticate the image (AES-256-GCM, key from the passphrase through
    /// Argon2id): from --passphrase-file, else LIFEBOAT_PASSPHRASE, else asked twice.
    #[arg(long)]
    pub encrypt: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The repository holding the Clonezilla image (e.g. /home/partimag, or a network
    /// address as for every command).
    #[command(flatten)]
    pub repo: RepoArg,
    /// The Clonezilla image: its directory's name in --repo.
    #[arg(long, value_name = "NAME")]
    pub image: String,
    /// The repository to write the new image into (any kind --repo takes; may be the same).
    #[arg(long, value_name = "REPO")]
    pub to: String,
    /// Name of the new lifeboat image.
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: String,
    /// Split the new image into files of at most this size (e.g. 4000M for FAT32 sticks).
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size)]
    pub split_size: Option<u64>,
    /// zstd compression level (1 fastest … 19 smallest).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub level: i32,
    /// Encrypt and authenticate the new image (as savedisk --encrypt).
    #[arg(long)]
    pub encrypt: bool,
    /// Passphrase for --encrypt from this file (mode 0600); else LIFEBOAT_PASSPHRASE, else
    /// asked twice.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Args)]
pub struct SavePartsArgs {
    #[command(flatten)]
    pub save: SaveArgs,
    /// Partition number to save (as in /dev/sdb2 → 2). Repeat for several.
    #[arg(long = "part", value_name = "N", required = true)]
    pub parts: Vec<u32>,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArg,
    /// Image name (required, except with `--repo -`, where the stream carries its image; if
    /// given there, the stream's manifest must name it).
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Passphrase of an encrypted image from this file (only its owner may read it: mode
    /// 0600); else from LIFEBOAT_PASSPHRASE, else asked on the terminal.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Target disk, one per disk of the image, in the same order. It will be OVERWRITTEN.
    #[arg(long, value_name = "DISK", required = true)]
    pub disk: Vec<PathBuf>,
    /// Do not ask for confirmation (for scripts). Without it and without a terminal,
    /// restore refuses.
    #[arg(long)]
    pub yes: bool,
    /// Skip the verification pass before writing (checksums are still verified while
    /// writing; a damaged image then stops half-way and leaves the disk inconsistent).
    #[arg(long)]
    pub no_precheck: bool,
    /// Show what the restore would do to each target (layout, contents, grow actions) and
    /// write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// restoredisk onto a larger disk: `none` keeps the layout, `last` grows the last
    /// partition (and its filesystem) to fill the disk, `proportional` shares the extra space
    /// among the partitions whose filesystem can grow.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = ["none", "last", "proportional"])]
    pub grow: String,
    /// Restore only disk N (from 0) of a multi-disk image onto the one --disk given.
    #[arg(long, value_name = "N")]
    pub from_disk: Option<u32>,
    /// Keep what the verification pass reads in this directory on a local disk (not a
    /// target), so that the image is read from the repository only once; what does not fit
    /// is read again. Without it, only memory is used (see --spool-memory).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Memory the spool may use (default for a network repository: a quarter of the
    /// available memory, at most 4G; for a local one: none). 0 turns the memory spool off.
    #[arg(long, value_name = "SIZE", value_parser = size::parse_size_or_zero)]
    pub spool_memory: Option<u64>,
    #[command(flatten)]
    pub digest: DigestArg,
    #[command(flatten)]
    pub tuning: Tuning,
}

#[derive(Args)]
pub struct RestorePartsArgs {
    #[command(flatten)]
    pub restore: RestoreArgs,
    /// Partition number to restore onto the same-numbered partition of the target. Repeat
    /// for several.
    #[arg(long = "part", value_name = "N", required = true)]
    pub parts: Vec<u32>,
}
