//! lifeboat-blockdev (being written)
