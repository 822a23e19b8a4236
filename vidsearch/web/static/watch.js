// The watch page: start at the moment, wait for a proxy if one is being made, and seek in place from the moments
// list and the timeline.
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
    const progress = document.getElementById('progress');
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
        } else {
          if (progress && s.progress != null) progress.textContent = Math.round(s.progress * 100) + '%';
          setTimeout(waitForProxy, 1000);
        }
      })
      .catch(() => setTimeout(waitForProxy, 3000));
  }

  if (video.getAttribute('src')) load();
  else if (video.closest('.player').dataset.state === 'preparing') waitForProxy();

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

  // A moment is a link in the list and a band on the timeline (an SVG <a>: its href is read as an attribute).
  const links = document.querySelectorAll('.moments a, .timeline a.mark');
  links.forEach(a => a.addEventListener('click', ev => {
    ev.stopPropagation();  // not a click on the timeline's track as well
    if (!video.currentSrc) return;  // nothing to seek in yet: follow the link
    ev.preventDefault();
    seek(parseFloat(a.dataset.t));
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
