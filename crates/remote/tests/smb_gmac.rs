//! The SMB client's AES-GMAC signer (vendor/smb, computed as the data comes instead of over a
//! buffered copy of every message) against AES-GCM with the message as associated data and
//! no plaintext, the definition in MS-SMB2 3.1.4.1, for messages cut into pieces anywhere.
#![cfg(feature = "smb")]

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::Aes128Gcm;
use binrw::BinRead;
use proptest::prelude::*;
use smb::crypto::make_signing_algo;
use smb::{Header, SigningAlgorithmId};

/// A 64-byte SMB2 header with `message_id` and, when `server`, the response flag.
fn header(message_id: u64, server: bool) -> Header {
    let mut b = [0u8; 64];
    b[..4].copy_from_slice(b"\xfeSMB");
    b[4..6].copy_from_slice(&64u16.to_le_bytes());
    b[12..14].copy_from_slice(&8u16.to_le_bytes()); // READ
    b[16..20].copy_from_slice(&u32::from(server).to_le_bytes());
    b[24..32].copy_from_slice(&message_id.to_le_bytes());
    Header::read(&mut std::io::Cursor::new(&b[..])).expect("a valid header")
}

/// The tag by the definition: nonce = MessageId (8 bytes, little-endian) and 4 bytes whose
/// lowest bit says "server response"; GCM tag over no plaintext with the message as AAD.
fn reference(key: &[u8; 16], message_id: u64, server: bool, message: &[u8]) -> u128 {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&message_id.to_le_bytes());
    nonce[8] = u8::from(server);
    let gcm = Aes128Gcm::new(key.into());
    let mut empty: [u8; 0] = [];
    let tag = gcm
        .encrypt_inout_detached(&nonce.into(), message, (&mut empty[..]).into())
        .unwrap();
    u128::from_le_bytes(tag.into())
}

fn streamed(key: &[u8; 16], message_id: u64, server: bool, message: &[u8], cuts: &[usize]) -> u128 {
    let mut s = make_signing_algo(SigningAlgorithmId::AesGmac, key).unwrap();
    s.start(&header(message_id, server));
    let mut at = 0;
    for &c in cuts {
        let c = c.min(message.len()).max(at);
        s.update(&message[at..c]);
        at = c;
    }
    s.update(&message[at..]);
    s.finalize()
}

#[test]
fn known_sizes_and_cuts_match_the_definition() {
    let key = *b"0123456789abcdef";
    for len in [0usize, 1, 15, 16, 17, 64, 100, 4096, (4 << 20) + 64 + 3] {
        let m: Vec<u8> = (0..len).map(|i| (i * 31 + i / 7) as u8).collect();
        for cuts in [vec![], vec![64], vec![1, 2, 3], vec![15, 16, 33, 34, 1000]] {
            for (id, server) in [(1u64, false), (0x1234_5678_9abc, true)] {
                assert_eq!(
                    streamed(&key, id, server, &m, &cuts),
                    reference(&key, id, server, &m),
                    "len {len}, cuts {cuts:?}, message id {id}, server {server}"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn any_message_cut_anywhere_matches_the_definition(
        key in any::<[u8; 16]>(),
        id in 1u64..u64::MAX,
        server in any::<bool>(),
        message in proptest::collection::vec(any::<u8>(), 0..600),
        mut cuts in proptest::collection::vec(0usize..600, 0..8),
    ) {
        cuts.sort_unstable();
        prop_assert_eq!(
            streamed(&key, id, server, &message, &cuts),
            reference(&key, id, server, &message)
        );
    }
}
