// The watch page: start at the hit's time, wait for a proxy if one is being made, and jump between matches in place.
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

  const time = document.getElementById('time');
  document.querySelectorAll('.moments a').forEach(a => a.addEventListener('click', ev => {
    if (!video.currentSrc) return;  // nothing to seek in yet: follow the link
    ev.preventDefault();
    start = parseFloat(a.dataset.t);
    video.currentTime = start;
    play();
    document.querySelectorAll('.moments a[aria-current]').forEach(x => x.removeAttribute('aria-current'));
    a.setAttribute('aria-current', 'true');
    if (time) time.textContent = a.dataset.time;
    history.replaceState(null, '', a.href);
  }));

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
