// musegen-osc.js: Open Sound Control 1.0 messages to and from byte arrays, in plain ES5 JavaScript
// (no Node, no Java classes), for Bitwig's controller scripts and for tests under node.
// Types: i (int32), f (float32), s (string), and on decoding also h (int64 as a Number), d (double),
// T/F/N. Bytes are plain arrays of 0..255; `toSigned` gives -128..127 for Java byte[] APIs.
var MusegenOSC = (function () {
  function pad4(n) { return (n + 3) & ~3; }

  function pushString(out, s) {
    var bytes = utf8(s);
    var n = pad4(bytes.length + 1);
    for (var i = 0; i < n; i++) out.push(i < bytes.length ? bytes[i] : 0);
  }

  function utf8(s) {
    var out = [];
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {  // a surrogate pair
        c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      }
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
  }

  function fromUtf8(b, start, end) {
    var s = "";
    for (var i = start; i < end;) {
      var c = b[i++];
      if (c >= 0xf0) c = ((c & 7) << 18) | ((b[i++] & 63) << 12) | ((b[i++] & 63) << 6) | (b[i++] & 63);
      else if (c >= 0xe0) c = ((c & 15) << 12) | ((b[i++] & 63) << 6) | (b[i++] & 63);
      else if (c >= 0xc0) c = ((c & 31) << 6) | (b[i++] & 63);
      if (c >= 0x10000) {
        c -= 0x10000;
        s += String.fromCharCode(0xd800 + (c >> 10), 0xdc00 + (c & 1023));
      } else s += String.fromCharCode(c);
    }
    return s;
  }

  function pushInt(out, v) { out.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255); }

  // IEEE 754 single precision, by hand (no typed arrays in every script engine)
  function floatBits(v) {
    if (v === 0) return 1 / v < 0 ? 0x80000000 : 0;
    if (v !== v) return 0x7fc00000;
    var sign = v < 0 ? 1 : 0;
    v = Math.abs(v);
    if (v === Infinity) return ((sign << 31) | 0x7f800000) >>> 0;
    var e = Math.floor(Math.log(v) / Math.LN2);
    if (Math.pow(2, e) > v) e -= 1;
    if (Math.pow(2, e + 1) <= v) e += 1;
    var m;
    if (e < -126) { e = -127; m = Math.round(v / Math.pow(2, -149)); }
    else {
      m = Math.round((v / Math.pow(2, e) - 1) * 8388608);
      if (m >= 8388608) { m = 0; e += 1; }
    }
    if (e > 127) return ((sign << 31) | 0x7f800000) >>> 0;
    return ((sign << 31) | ((e + 127) << 23) | m) >>> 0;
  }

  function bitsFloat(b) {
    var sign = b >>> 31 ? -1 : 1, e = (b >>> 23) & 255, m = b & 0x7fffff;
    if (e === 255) return m ? NaN : sign * Infinity;
    if (e === 0) return sign * m * Math.pow(2, -149);
    return sign * (1 + m / 8388608) * Math.pow(2, e - 127);
  }

  // encode("/musegen/continue", ["id", "bars", 8]); numbers that are integers go as i, others as f,
  // unless `types` (a string like "sif") says otherwise
  function encode(address, args, types) {
    var out = [], tags = ",", i;
    args = args || [];
    for (i = 0; i < args.length; i++) {
      var t = types ? types.charAt(i) : (typeof args[i] === "string" ? "s" :
        (Math.floor(args[i]) === args[i] && Math.abs(args[i]) < 2147483648 ? "i" : "f"));
      tags += t;
    }
    pushString(out, address);
    pushString(out, tags);
    for (i = 0; i < args.length; i++) {
      var tag = tags.charAt(i + 1);
      if (tag === "s") pushString(out, String(args[i]));
      else if (tag === "i") pushInt(out, args[i] | 0);
      else if (tag === "f") pushInt(out, floatBits(+args[i]));
      else throw new Error("musegen-osc: can't encode type " + tag);
    }
    return out;
  }

  function readString(b, pos) {
    var end = pos;
    while (end < b.length && b[end] !== 0) end++;
    if (end >= b.length) throw new Error("musegen-osc: unterminated string");
    return {value: fromUtf8(b, pos, end), next: pad4(end + 1)};
  }

  function readU32(b, pos) {
    return ((b[pos] << 24) >>> 0) + (b[pos + 1] << 16) + (b[pos + 2] << 8) + b[pos + 3];
  }

  // decode(bytes) -> {address, types, args}; bytes may be signed (Java byte[]) or unsigned
  function decode(raw) {
    var b = [], i;
    for (i = 0; i < raw.length; i++) b.push(raw[i] & 255);
    if (b[0] !== 47) throw new Error("musegen-osc: not an OSC message");  // '/' (bundles: not used)
    var a = readString(b, 0), t = readString(b, a.next), pos = t.next, args = [];
    if (t.value.charAt(0) !== ",") throw new Error("musegen-osc: no type tags");
    for (i = 1; i < t.value.length; i++) {
      var c = t.value.charAt(i);
      if (c === "s") { var s = readString(b, pos); args.push(s.value); pos = s.next; }
      else if (c === "i") { var v = readU32(b, pos); args.push(v >= 2147483648 ? v - 4294967296 : v); pos += 4; }
      else if (c === "f") { args.push(bitsFloat(readU32(b, pos))); pos += 4; }
      else if (c === "h") {
        var hi = readU32(b, pos), lo = readU32(b, pos + 4);
        args.push((hi >= 2147483648 ? hi - 4294967296 : hi) * 4294967296 + lo); pos += 8;
      }
      else if (c === "d") {
        var hi2 = readU32(b, pos), lo2 = readU32(b, pos + 4);
        var sign = hi2 >>> 31 ? -1 : 1, e = (hi2 >>> 20) & 2047, m = (hi2 & 0xfffff) * 4294967296 + lo2;
        args.push(e === 0 ? sign * m * Math.pow(2, -1074) : sign * (1 + m / 4503599627370496) * Math.pow(2, e - 1023));
        pos += 8;
      }
      else if (c === "T") args.push(true);
      else if (c === "F") args.push(false);
      else if (c === "N") args.push(null);
      else throw new Error("musegen-osc: can't decode type " + c);
    }
    return {address: a.value, types: t.value.substring(1), args: args};
  }

  function toSigned(bytes) {
    var out = [];
    for (var i = 0; i < bytes.length; i++) out.push(bytes[i] > 127 ? bytes[i] - 256 : bytes[i]);
    return out;
  }

  return {encode: encode, decode: decode, toSigned: toSigned, floatBits: floatBits, bitsFloat: bitsFloat};
})();

if (typeof module !== "undefined") module.exports = MusegenOSC;
