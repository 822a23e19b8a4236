// The watch page: start at the moment, wait for a proxy if one is being made, seek in place from the moments
// list and the timeline, and keep the "Download clip" link in step with its in and out points.
(() => {
  const video = document.getElementById('player');
  if (!video) return;
  let start = parseFloat(video.dataset.start) || 0;

  function play() {
    // Browsers refuse to autoplay sound without a user gesture on the page; muted playback is always allowed.
    video.play().catch(() => { video.muted = true; return video.play(); }).catch(() => {});
  }

  // The #t= fragment already starts most browsers there; setting currentTime covers those that ignore it.
  function seekAndPlay() {
    if (Math.abs(video.currentTime - start) > 0.05) video.currentTime = start;
    play();
  }

  function load() {
    if (video.readyState >= 1) seekAndPlay();
    else video.addEventListener('loadedmetadata', seekAndPlay, { once: true });
  }

  function waitForProxy() {
    const notice = document.getElementById('notice');
    fetch(video.dataset.statusUrl, { headers: { Accept: 'application/json' } })
      .then(r => r.json())
      .then(s => {
        if (s.state === 'ready') {
          notice.remove();
          video.controls = true;
          video.src = s.url + '#t=' + start;
          load();
        } else if (s.state === 'failed') {
          notice.querySelector('.spinner')?.remove();
          notice.querySelector('p').textContent = 'This video cannot be played in a browser. ' + (s.error || '');
        } else if (s.state === 'busy') {  // no room in the server's queue yet: ask again later
          notice.querySelector('p').textContent = s.error + ' This page asks again by itself.';
          setTimeout(waitForProxy, 5000);
        } else {
          if (!document.getElementById('progress')) {  // after "busy"
            notice.querySelector('p').replaceChildren(
              'Preparing a browser-playable copy of this video (only the first time)… ',
              Object.assign(document.createElement('span'), { id: 'progress' }));
          }
          document.getElementById('progress').textContent = Math.round((s.progress || 0) * 100) + '%';
          setTimeout(waitForProxy, 1000);
        }
      })
      .catch(() => setTimeout(waitForProxy, 3000));
  }

  if (video.getAttribute('src')) load();
  else if (['preparing', 'busy'].includes(video.closest('.player').dataset.state)) waitForProxy();

  // As fmt_time on the server: m:ss, or h:mm:ss from an hour on.
  function fmt(t) {
    const s = Math.floor(t), two = n => String(n).padStart(2, '0');
    const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return (h ? h + ':' + two(m) : m) + ':' + two(s % 60);
  }

  const time = document.getElementById('time');
  function seek(t) {
    start = t;
    video.currentTime = t;
    play();
    if (time) time.textContent = fmt(t);
  }

  // Download clip: in and out points in seconds, which the link follows; "Set … to now" takes the playback time.
  const clip = document.getElementById('clip');
  const clipIn = document.getElementById('clip-start'), clipOut = document.getElementById('clip-end');
  const clipLink = document.getElementById('clip-download'), clipInfo = document.getElementById('clip-info');
  const ms = t => Math.round(t * 1000) / 1000;
  // m:ss with the fraction of a second when there is one: 1:05.25
  const exact = t => fmt(t) + (ms(t) % 1 ? String(+(ms(t) % 1).toFixed(3)).slice(1) : '');

  function clipProblem(a, b) {
    if (!Number.isFinite(a) || !Number.isFinite(b) || a < 0) return 'Give the in and out points in seconds.';
    if (b > parseFloat(clipOut.max) + 0.001) return 'The out point is after the end of the video.';
    if (b <= a) return 'The out point must come after the in point.';
    const limit = parseFloat(clip.dataset.limit);
    if (b - a > limit + 0.0005) return 'A clip can be at most ' + limit + ' s long.';
    return null;
  }

  let following = 0;  // the clip whose job is followed (makeClip)
  function updateClip() {
    following++;
    const a = parseFloat(clipIn.value), b = parseFloat(clipOut.value);
    const problem = clipProblem(a, b);
    if (problem) {
      clipLink.removeAttribute('href');
      clipLink.setAttribute('aria-disabled', 'true');
      clipInfo.textContent = problem;
      return;
    }
    const url = new URL(clip.action);
    url.search = new URLSearchParams({ start: String(ms(a)), end: String(ms(b)) });
    clipLink.href = url.pathname + url.search;
    clipLink.removeAttribute('aria-disabled');
    clipInfo.textContent = exact(a) + '–' + exact(b) + ' (' + +(b - a).toFixed(3) + ' s)';
  }

  // Ask for the clip's job (/api/clip/…), show its progress until it is done, then download the clip. Another
  // click or a change of the in and out points leaves the job to run but stops following it.
  function makeClip(href) {
    const mine = ++following;
    const show = text => { if (mine === following) clipInfo.textContent = text; };
    const step = (url, wait) => fetch(url, { headers: { Accept: 'application/json' } })
      .then(r => r.json().then(job => ({ ok: r.ok, retry: r.headers.get('Retry-After'), job })))
      .then(({ ok, retry, job }) => {
        if (mine !== following) return;
        if (!ok) {
          show(job.error || 'The clip could not be made.');
          if (retry) setTimeout(() => step(url, wait), parseFloat(retry) * 1000);
        } else if (job.state === 'done') {
          show('The clip is ready; downloading it.');
          const a = document.createElement('a');
          a.href = job.url;
          a.download = '';
          document.body.append(a);
          a.click();
          a.remove();
        } else if (job.state === 'failed') {
          show('The clip could not be made. ' + (job.error || ''));
        } else {
          show('Making the clip (only the first time)… ' + Math.round(job.progress * 100) + '%');
          setTimeout(() => step(job.status_url, Math.min(wait * 1.5, 2000)), wait);
        }
      })
      .catch(() => show('The server did not answer; try again.'));
    show('Making the clip (only the first time)…');
    step('/api' + href, 250);
  }

  function setClip(a, b) {
    if (!clip) return;
    clipIn.value = a;
    clipOut.value = b;
    updateClip();
  }

  if (clip) {
    clipIn.addEventListener('input', updateClip);
    clipOut.addEventListener('input', updateClip);
    clip.querySelectorAll('[data-set]').forEach(button => button.addEventListener('click', () => {
      document.getElementById(button.dataset.set).value = String(ms(video.currentTime));
      updateClip();
    }));
    const enable = () => clip.querySelectorAll('[data-set]').forEach(button => { button.disabled = false; });
    if (video.readyState >= 1) enable();
    else video.addEventListener('loadedmetadata', enable, { once: true });
    clip.addEventListener('submit', ev => {  // Enter in a field: the same as the link
      if (clipProblem(parseFloat(clipIn.value), parseFloat(clipOut.value))) ev.preventDefault();
    });
    clipLink.addEventListener('click', ev => {
      if (!clipLink.href) return;
      ev.preventDefault();  // the clip is made by a job on the server: follow it, then download the file
      makeClip(clipLink.getAttribute('href'));
    });
    updateClip();
  }

  // A moment is a link in the list and a band on the timeline (an SVG <a>: its href is read as an attribute).
  const links = document.querySelectorAll('.moments a, .timeline a.mark');
  links.forEach(a => a.addEventListener('click', ev => {
    ev.stopPropagation();  // not a click on the timeline's track as well
    if (!video.currentSrc) return;  // nothing to seek in yet: follow the link
    ev.preventDefault();
    seek(parseFloat(a.dataset.t));
    if (a.dataset.end) setClip(a.dataset.t, a.dataset.end);
    links.forEach(x => {
      if (x.dataset.t === a.dataset.t) x.setAttribute('aria-current', 'true');
      else x.removeAttribute('aria-current');
    });
    history.replaceState(null, '', a.getAttribute('href'));
  }));

  const svg = document.querySelector('.timeline svg');
  if (svg) {
    const duration = parseFloat(svg.dataset.duration);
    const width = svg.viewBox.baseVal.width;
    const playhead = svg.querySelector('.playhead');
    // Anywhere else on the strip seeks to that time.
    svg.addEventListener('click', ev => {
      if (!video.currentSrc) return;
      const box = svg.getBoundingClientRect();
      seek(Math.min(Math.max((ev.clientX - box.left) / box.width, 0), 1) * duration);
    });
    video.addEventListener('timeupdate', () => {
      const x = String(Math.min(video.currentTime / duration, 1) * width);
      playhead.setAttribute('x1', x);
      playhead.setAttribute('x2', x);
    });
  }

  // Where the query's words are on screen (--ocr): boxes over the picture while a moment that has them plays.
  const boxes = document.getElementById('word-boxes');
  if (boxes) {
    const moments = JSON.parse(boxes.dataset.moments);
    const toggle = document.getElementById('show-words');
    let shown = null;
    // The picture's rectangle inside the element (letterboxed when the page limits the player's height).
    function place() {
      const w = video.videoWidth || video.width, h = video.videoHeight || video.height;
      const scale = Math.min(video.clientWidth / w, video.clientHeight / h);
      Object.assign(boxes.style, {
        width: w * scale + 'px', height: h * scale + 'px',
        left: video.offsetLeft + (video.clientWidth - w * scale) / 2 + 'px',
        top: video.offsetTop + (video.clientHeight - h * scale) / 2 + 'px',
      });
    }
    function draw() {
      const t = video.currentTime;
      const m = moments.find(x => x.start - 0.05 <= t && t < x.end) || null;
      boxes.hidden = !toggle.checked || !m;
      if (m === shown) return;
      shown = m;
      boxes.replaceChildren(...(m ? m.words : []).map(word => {
        const [x0, y0, x1, y1] = word.box;
        const el = document.createElement('div');
        el.className = 'word-box';
        el.title = word.text;
        Object.assign(el.style, { left: x0 * 100 + '%', top: y0 * 100 + '%', width: (x1 - x0) * 100 + '%',
                                  height: (y1 - y0) * 100 + '%' });
        return el;
      }));
    }
    ['loadedmetadata', 'timeupdate', 'seeked'].forEach(e => video.addEventListener(e, () => { place(); draw(); }));
    window.addEventListener('resize', place);
    toggle.addEventListener('change', draw);
    place();
    draw();
  }

  // Back to the results when we came from them (an image search cannot be reloaded from its URL).
  const back = document.querySelector('[data-back]');
  if (back && document.referrer) {
    const from = new URL(document.referrer);
    if (from.origin === location.origin && from.pathname === '/') {
      back.textContent = '← Results';
      back.addEventListener('click', ev => { ev.preventDefault(); history.back(); });
    }
  }
})();
