// The bench fleet's MAC addressing: machine i is 52:54 followed by i as four bytes.

export const macOf = (i) => `52:54:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
