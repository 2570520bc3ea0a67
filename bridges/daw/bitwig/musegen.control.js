// musegen.control.js: a Bitwig Studio controller extension script that continues the selected
// launcher clip with musegen. It reads the cursor clip's notes, streams them to `musegen serve`
// over UDP (OSC, encoded here: musegen-osc.js), asks for takes, and writes the take you pick
// into the clip after its last bar. Start the server with --reply-port 9001 (docs/daw.md).
// Controls (the controller's panel, Studio I/O): Continue, Take, Accept, Bars, Variations, Style.
loadAPI(17);
load("musegen-osc.js");

host.defineController("musegen", "musegen", "0.1", "5a0d1a8e-5b7e-4c2f-9a51-6d8c0e3f7b21", "musegen");
host.defineMidiPorts(0, 0);

var STEP = 1 / 48;         // beats per step: 16ths and triplets land on the grid
var GRID = 128 * 48;       // steps seen: 128 beats of clip
var TICKS = 480;           // musegen's ticks per beat (bars counted as the server counts them)
var TIMEOUT_MS = 300000;

var S = {notes: {}, takes: [], current: -1, phase: "idle", waiting: null, request: null,
         n: 0, stem: "bw" + (new Date().getTime() % 1000000000).toString(36) + Math.floor(Math.random() * 46656).toString(36)};
var transport, clip, prefs = {}, controls = {};

function init() {
  transport = host.createTransport();
  transport.tempo().value().markInterested();
  transport.timeSignature().numerator().markInterested();
  transport.timeSignature().denominator().markInterested();
  clip = host.createLauncherCursorClip(GRID, 128);
  clip.setStepSize(STEP);
  clip.scrollToKey(0);
  clip.scrollToStep(0);
  clip.getLoopLength().markInterested();
  clip.addNoteStepObserver(function (step) {
    var key = step.channel() + ":" + step.x() + ":" + step.y();
    if (String(step.state()) === "NoteOn") {
      S.notes[key] = {x: step.x(), y: step.y(), channel: step.channel(), velocity: step.velocity(), duration: step.duration()};
    } else delete S.notes[key];
  });
  var p = host.getPreferences();
  prefs.port = p.getNumberSetting("Server port (musegen serve --osc-port)", "musegen", 1, 65535, 1, "", 9000);
  prefs.reply = p.getNumberSetting("Reply port (musegen serve --reply-port)", "musegen", 1, 65535, 1, "", 9001);
  prefs.port.markInterested();
  prefs.reply.markInterested();
  var d = host.getDocumentState();
  controls.bars = d.getNumberSetting("Bars", "musegen", 1, 64, 1, "bars", 8);
  controls.variations = d.getNumberSetting("Variations", "musegen", 1, 8, 1, "", 4);
  controls.take = d.getNumberSetting("Take", "musegen", 1, 8, 1, "", 1);
  controls.style = d.getStringSetting("Style", "musegen", 64, "");
  controls.bars.markInterested();
  controls.variations.markInterested();
  controls.style.markInterested();
  d.getSignalSetting("Continue", "musegen", "Continue").addSignalObserver(startContinue);
  d.getSignalSetting("Accept", "musegen", "Accept take").addSignalObserver(accept);
  controls.take.addRawValueObserver(function (v) {
    var k = Math.round(v) - 1;
    if (S.phase === "idle" && k >= 0 && k < S.takes.length && k !== S.current) write(k);
  });
  host.addDatagramPacketObserver("musegen replies", Math.round(prefs.reply.getRaw()), onPacket);
  status("musegen ready: select a clip, press Continue");
}

function exit() {}
function flush() {}

function status(text) { host.showPopupNotification(text); println(text); }
function newId() { S.n += 1; return S.stem + "-" + S.n; }

function send(address, args) {
  host.sendDatagramPacket("127.0.0.1", Math.round(prefs.port.getRaw()), MusegenOSC.toSigned(MusegenOSC.encode(address, args)));
}

function metre() {
  var ts = transport.timeSignature();
  return {num: ts.numerator().get(), den: ts.denominator().get(), tempo: transport.tempo().value().getRaw()};
}

function barBeats(m) { return m.num * 4 / m.den; }

function clipNotes() {  // in beats from the clip start, by onset
  var out = [];
  for (var k in S.notes) {
    var n = S.notes[k];
    out.push({pitch: n.y, velocity: Math.max(1, Math.round(n.velocity * 127)), start: n.x * STEP,
              duration: n.duration, channel: n.channel});
  }
  out.sort(function (a, b) { return a.start - b.start || a.pitch - b.pitch; });
  return out;
}

function startContinue() {
  if (S.phase !== "idle") { status("musegen: busy, wait for the takes"); return; }
  var notes = clipNotes(), m = metre(), bb = barBeats(m);
  if (!notes.length) { status("musegen: the clip has no notes"); return; }
  var origin = Math.floor(notes[0].start / bb + 1e-9) * bb, end = 0, rid = newId();
  S.request = {id: rid, metre: m, origin: origin, notes: notes};
  for (var i = 0; i < notes.length; i++) {
    var s = Math.round((notes[i].start - origin) * TICKS);
    end = Math.max(end, s + Math.max(1, Math.round(notes[i].duration * TICKS)));
  }
  S.request.inputBars = Math.ceil(end / Math.round(bb * TICKS));
  S.takes = [];
  S.current = -1;
  expect("stream", rid + "-in");
  send("/musegen/clip/begin", [rid + "-in", "name", "bitwig", "tempo", m.tempo, "time_signature", m.num + "/" + m.den]);
  for (i = 0; i < notes.length; i++) {
    var n = notes[i];
    send("/musegen/note", [rid + "-in", n.pitch, n.velocity, n.start - origin, n.duration, 0], "iiiffi");
  }
  send("/musegen/clip/end", [rid + "-in"]);
  status("musegen: sending the clip");
}

function expect(phase, rid) {
  S.phase = phase;
  S.waiting = rid;
  var mine = S.n;
  host.scheduleTask(function () {
    if (S.phase === phase && S.n === mine) { S.phase = "idle"; status("musegen: no answer (is musegen serve running with --reply-port?)"); }
  }, TIMEOUT_MS);
}

function accept() {
  if (S.current < 0 || S.phase !== "idle") { status("musegen: no take to accept"); return; }
  var rid = newId();
  expect("accept", rid);
  send("/musegen/accept", [rid, "take", S.takes[S.current].id]);
}

function onPacket(data) {
  var m;
  try { m = MusegenOSC.decode(data); } catch (e) { println("musegen: bad packet: " + e); return; }
  var a = m.args, addr = m.address;
  if (a[0] !== S.waiting) return;
  if (addr === "/musegen/error") { S.phase = "idle"; status("musegen error: " + a[1]); return; }
  if (addr === "/musegen/clip/begin") { S.takes.push({id: a[1], expected: a[2], bars: a[3], notes: []}); return; }
  if (addr === "/musegen/note" && S.takes.length) {
    S.takes[S.takes.length - 1].notes.push({pitch: a[1], velocity: a[2], start: a[3], duration: a[4], channel: a[5] % 16});
    return;
  }
  if (addr !== "/musegen/done") return;
  if (S.phase === "stream") {
    var r = S.request, params = ["take", a[1], "bars", Math.round(controls.bars.getRaw()),
                                 "variations", Math.round(controls.variations.getRaw()), "stream", 1];
    var style = controls.style.get();
    if (style) params.push("style", style);
    expect("generate", r.id);
    send("/musegen/continue", [r.id].concat(params));
    status("musegen: continuing...");
  } else if (S.phase === "accept") {
    S.phase = "idle";
    status("musegen: accepted " + a[1]);
  } else {
    S.phase = "idle";
    write(0);
  }
}

// the clip's own notes + take k after its last bar (the clip grows to hold them)
function write(k) {
  var r = S.request, t = S.takes[k], bb = barBeats(r.metre), i;
  var at = r.origin + r.inputBars * bb;
  clip.clearSteps();
  for (i = 0; i < r.notes.length; i++) {
    var o = r.notes[i];
    clip.setStep(o.channel, Math.round(o.start / STEP), o.pitch, o.velocity, o.duration);
  }
  // a step holds one note per key and channel: of two on one step (a take can have them), the longer
  var steps = {}, keys = [];
  for (i = 0; i < t.notes.length; i++) {
    var n = t.notes[i], x = Math.round((at + n.start) / STEP), key = n.channel + ":" + x + ":" + n.pitch;
    if (!steps[key]) keys.push(key);
    if (!steps[key] || steps[key].duration < n.duration) steps[key] = {x: x, n: n, duration: n.duration};
  }
  for (i = 0; i < keys.length; i++) {
    var st = steps[keys[i]];
    clip.setStep(st.n.channel, st.x, st.n.pitch, st.n.velocity, st.n.duration);
  }
  var length = at + t.bars * bb;
  if (clip.getLoopLength().get() < length) clip.getLoopLength().set(length);
  S.current = k;
  controls.take.setRaw(k + 1);
  var lost = t.notes.length < t.expected ? " (incomplete: " + t.notes.length + " of " + t.expected +
    " notes arrived over UDP; press Continue again)" : "";
  status("musegen: take " + (k + 1) + "/" + S.takes.length + " " + t.id + lost);
}
