package imap

// LockFence is how long a new holder waits before it works the mailbox.
const LockFence = lockFence
