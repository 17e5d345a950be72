// The studio page: builds its menus from /api/runs, sends jobs, shows their progress and results.
// Every name or text from the server (run names, file names, messages, generated text) is put into the page with
// textContent or as an attribute value, never as HTML.
'use strict';

const $ = id => document.getElementById(id);
let runs = [];
let current = null;
const strokes = [];  // the writing pad's strokes: arrays of [x, y] in canvas pixels

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'class') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function say(message) {
  const box = $('message');
  box.textContent = message || '';
  box.hidden = !message;
}

async function api(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error('the studio does not answer (was it stopped?)');
  }
  let data = null;
  try { data = await response.json(); } catch (err) { data = null; }
  if (!response.ok) throw new Error((data && data.error) || `the studio answered ${response.status}`);
  return data;
}

function b64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// -- the run and its menus ---------------------------------------------------------------------------------------
function showRun(index) {
  current = runs[index];
  const hand = current.mode === 'hand';
  $('run-about').textContent = `${current.domain} · ${current.codec} · ${current.backend}` +
    (hand ? ' · writes text' : '');
  for (const node of document.querySelectorAll('.for-samples')) node.hidden = hand;
  for (const node of document.querySelectorAll('.for-hand')) node.hidden = !hand;
  for (const node of document.querySelectorAll('.for-strokes')) node.hidden = current.domain !== 'strokes';
  $('n').max = current.limits.samples;
  $('length').max = current.limits.length;
  $('prime').accept = current.extensions.join(',');
  $('bias').value = current.defaults.bias;
  const box = $('conditions');
  box.replaceChildren();
  for (const [name, values] of Object.entries(current.conditions)) {
    const select = el('select', {'data-condition': name}, el('option', {value: '', text: 'any'}));
    for (const value of values) select.append(el('option', {value, text: value}));
    box.append(el('label', {}, document.createTextNode(name), select));
  }
  say('');
}

function settings() {
  const number = id => $(id).value.trim();
  const conditions = {};
  for (const select of document.querySelectorAll('[data-condition]')) {
    if (select.value) conditions[select.dataset.condition] = select.value;
  }
  return {n: number('n') || 1, temperature: number('temperature'), top_p: number('top_p'), top_k: number('top_k'),
          length: number('length') || null, seed: number('seed') || null, bias: number('bias') === '' ? null : number('bias'), conditions};
}

// -- jobs --------------------------------------------------------------------------------------------------------
async function submit(body, onDone) {
  say('');
  let job;
  try {
    job = await api(`/api/runs/${current.index}/jobs`, {method: 'POST',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  } catch (err) {
    say(err.message);
    return;
  }
  track(job, onDone);
}

function track(job, onDone) {
  const bar = el('progress', {max: 1, value: 0});
  const words = el('span', {text: 'waiting'});
  const cancel = el('button', {type: 'button', class: 'cancel', text: 'Cancel'});
  const row = el('div', {class: 'job', 'data-job': job.id}, bar, words, cancel);
  $('jobs').append(row);
  cancel.addEventListener('click', () => api(`/api/jobs/${job.id}/cancel`, {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: '{}'}).catch(err => say(err.message)));
  const poll = async () => {
    let status;
    try {
      status = await api(`/api/jobs/${job.id}`);
    } catch (err) {
      row.remove();
      say(err.message);
      return;
    }
    if (status.state === 'queued') {
      words.textContent = status.ahead ? `waiting: ${status.ahead} job(s) ahead on this model` : 'waiting';
    } else if (status.state === 'running') {
      bar.max = status.total;
      bar.value = status.done;
      words.textContent = `${status.what} (${status.seconds} s)`;
    }
    if (status.state === 'done') {
      row.remove();
      onDone(status);
    } else if (status.state === 'failed') {
      row.remove();
      say(status.error);
    } else if (status.state === 'cancelled') {
      words.textContent = 'cancelled';
      cancel.remove();
      setTimeout(() => row.remove(), 3000);
    } else {
      setTimeout(poll, 250);
    }
  };
  poll();
}

function fileUrl(jobId, number, download) {
  return `/api/jobs/${jobId}/files/${number}` + (download ? '?download=1' : '');
}

function card(jobId, item, hand, body, styled) {
  const node = el('article', {class: hand ? 'card hand' : 'card'}, el('h3', {text: item.title}));
  const asked = Object.entries(item.conditions || {}).map(([k, v]) => `${k}=${v}`).join(' ');
  if (asked) node.append(el('div', {class: 'asked', text: asked}));
  if (styled) node.append(el('div', {class: 'asked', text: 'continued from your line'}));
  if (item.image !== null) node.append(el('img', {src: fileUrl(jobId, item.image), alt: `picture of ${item.title}`}));
  if (item.text) node.append(el('pre', {text: item.text}));
  if (item.audio !== null) node.append(el('audio', {controls: '', preload: 'metadata', src: fileUrl(jobId, item.audio)}));
  for (const note of item.notes) node.append(el('div', {class: 'note', text: note}));
  const links = el('div', {class: 'links'});
  for (const d of item.downloads) {
    links.append(el('a', {href: fileUrl(jobId, d.file, true), download: d.name, text: `Download ${d.label}`}));
  }
  const again = el('button', {type: 'button', class: 'regenerate', text: hand ? 'Write again' : 'Regenerate'});
  again.addEventListener('click', () => {
    submit({...body, n: 1, seed: null}, status => node.replaceWith(card(status.id, status.result.items[0], hand, body, status.result.styled)));
  });
  links.append(again);
  node.append(links);
  return node;
}

function showResults(status, body) {
  const hand = status.result.kind === 'hand';
  for (const item of status.result.items) $('results').prepend(card(status.id, item, hand, body, status.result.styled));
}

function generate(extra = {}) {
  const body = {kind: 'samples', ...settings(), ...extra};
  submit(body, status => showResults(status, body));
}

async function continueFile() {
  const file = $('prime').files[0];
  if (!file) { say('choose a file to continue first'); return; }
  const data = b64(new Uint8Array(await file.arrayBuffer()));
  generate({prime: {name: file.name, data}});
}

// -- the writing pad ---------------------------------------------------------------------------------------------
function padPoint(event) {
  const pad = $('pad');
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function drawPad() {
  const pad = $('pad');
  const g = pad.getContext('2d');
  g.clearRect(0, 0, pad.width, pad.height);
  g.strokeStyle = '#dde4ee';
  g.lineWidth = 1;
  for (const y of [0.3, 0.7]) { g.beginPath(); g.moveTo(0, y * pad.height); g.lineTo(pad.width, y * pad.height); g.stroke(); }
  g.strokeStyle = '#111';
  g.lineWidth = 2.5;
  g.lineCap = g.lineJoin = 'round';
  for (const stroke of strokes) {
    g.beginPath();
    stroke.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
    if (stroke.length === 1) g.lineTo(stroke[0][0] + 0.5, stroke[0][1]);
    g.stroke();
  }
}

function setUpPad() {
  const pad = $('pad');
  let drawing = false;
  pad.addEventListener('pointerdown', event => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    drawing = true;
    strokes.push([padPoint(event)]);
    drawPad();
  });
  pad.addEventListener('pointermove', event => {
    if (!drawing) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of (events.length ? events : [event])) strokes[strokes.length - 1].push(padPoint(e));
    drawPad();
  });
  const stop = () => { drawing = false; };
  pad.addEventListener('pointerup', stop);
  pad.addEventListener('pointercancel', stop);
  $('clear').addEventListener('click', () => { strokes.length = 0; drawPad(); });
  drawPad();
}

// The pad's strokes as W3C InkML: the server reads them with the same reader as an .inkml file.
function padInkml() {
  const traces = strokes.map(s => `<trace>${s.map(([x, y]) => `${x.toFixed(1)} ${y.toFixed(1)}`).join(', ')}</trace>`);
  return `<ink xmlns="http://www.w3.org/2003/InkML">\n${traces.join('\n')}\n</ink>\n`;
}

function write() {
  const body = {kind: 'hand', ...settings(), n: 1, text: $('text').value};
  if (strokes.length) {
    body.style = {name: 'your-line.inkml', data: b64(new TextEncoder().encode(padInkml()))};
    body.style_text = $('style-text').value;
  }
  submit(body, status => showResults(status, body));
}

// -- start -------------------------------------------------------------------------------------------------------
async function start() {
  try {
    runs = await api('/api/runs');
  } catch (err) {
    say(err.message);
    return;
  }
  const select = $('run');
  runs.forEach((run, i) => select.append(el('option', {value: i, text: run.name})));
  select.addEventListener('change', () => showRun(Number(select.value)));
  $('generate').addEventListener('click', () => generate());
  $('continue').addEventListener('click', () => continueFile().catch(err => say(err.message)));
  $('write').addEventListener('click', write);
  setUpPad();
  showRun(0);
  document.body.dataset.ready = '1';
}

start();
