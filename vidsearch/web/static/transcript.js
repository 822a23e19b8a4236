// The watch page's transcript: the video's subtitle and speech lines with their times (from /api/transcript), the
// line playing marked as the video plays, a click seeks there, the lines holding the query's words tinted, and a
// box that keeps only the lines holding its words.
(() => {
  const panel = document.getElementById('transcript'), video = document.getElementById('player');
  if (!panel || !video) return;
  const list = document.getElementById('transcript-lines'), box = document.getElementById('transcript-search');
  const count = document.getElementById('transcript-count');
  let rows = [];  // [{line, item, link, words}] by time

  // Words as the server's full-text index finds them: letters and digits, case and accents folded.
  const tokens = s => s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
  // As a search does (ocr.query_terms): each "quoted phrase" when there are any, else each word.
  function terms(q) {
    const phrases = [...q.matchAll(/"([^"]*)"/g)].map(m => tokens(m[1])).filter(t => t.length);
    return phrases.length ? phrases : tokens(q).map(w => [w]);
  }
  const has = (words, term) => words.some((_, i) => term.every((w, j) => words[i + j] === w));
  const holds = (words, ts) => ts.length > 0 && ts.every(t => has(words, t));

  function fmt(t) {  // as fmt_time on the server: m:ss, or h:mm:ss from an hour on
    const s = Math.floor(t), two = n => String(n).padStart(2, '0');
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return (h ? h + ':' + two(m) : m) + ':' + two(s % 60);
  }

  function seek(t) {
    if (!video.getAttribute('src')) return false;  // not playable here yet: the link reloads the page at t
    video.currentTime = t;
    video.play().catch(() => {});
    return true;
  }

  function row(line) {
    const item = document.createElement('li'), link = document.createElement('a');
    const url = new URL(location.href);
    url.searchParams.set('t', String(line.start));
    url.hash = '';
    link.href = url.toString();
    link.dataset.t = String(line.start);
    link.append(Object.assign(document.createElement('span'), { className: 'when', textContent: fmt(line.start) }),
      Object.assign(document.createElement('span'), { className: 'layer', textContent: line.layer }),
      Object.assign(document.createElement('span'), { className: 'text', textContent: line.text }));
    link.title = line.origin;
    link.addEventListener('click', e => { if (seek(line.start)) e.preventDefault(); });
    item.append(link);
    return { line, item, link, words: tokens(line.text) };
  }

  let current = null;
  function follow() {  // mark the line shown or said now, and keep it in view inside the list
    const t = video.currentTime;
    const now = rows.findLast(r => r.line.start <= t && t < r.line.end) || null;
    if (now === current) return;
    current?.link.removeAttribute('aria-current');
    current = now;
    if (!now) return;
    now.link.setAttribute('aria-current', 'true');
    const top = now.item.offsetTop, bottom = top + now.item.offsetHeight;
    if (top < list.scrollTop || bottom > list.scrollTop + list.clientHeight) list.scrollTop = top - list.clientHeight / 3;
  }

  function find() {
    const ts = terms(box.value);
    let shown = 0;
    for (const r of rows) {
      r.item.hidden = ts.length > 0 && !holds(r.words, ts);
      shown += !r.item.hidden;
    }
    count.textContent = ts.length ? `${shown} of ${rows.length} lines` : `${rows.length} lines`;
  }

  fetch(panel.dataset.url, { headers: { Accept: 'application/json' } })
    .then(r => r.json())
    .then(data => {
      if (!data.lines || !data.lines.length) return;
      rows = data.lines.map(row);
      const asked = terms(panel.dataset.query || '');
      rows.forEach(r => r.item.classList.toggle('match', holds(r.words, asked)));
      list.replaceChildren(...rows.map(r => r.item));
      panel.hidden = false;
      find();
      follow();
      box.addEventListener('input', find);
      ['timeupdate', 'seeked', 'loadedmetadata'].forEach(e => video.addEventListener(e, follow));
    })
    .catch(() => {});
})();
