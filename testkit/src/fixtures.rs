//! Small in-memory fixtures the verification tests share: signature blobs and
//! trust stores made from the kit's PKI.
