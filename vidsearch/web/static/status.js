// While the server watches folders (`serve --watch`): the header's line says "Indexing 3 of 12 files…" as a run
// goes, and the counts line (search page) is brought up to date when one ends. Polls /api/status every 2 s, not while
// the page is hidden. base.html loads this only with a watcher.
(() => {
  const line = document.querySelector('p.indexing[data-status]');
  if (!line) return;
  const counts = document.querySelector('.counts');
  let runs = line.dataset.runs;
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

  function show(s) {
    const indexing = s.state === 'indexing';
    line.classList.toggle('failed', !indexing && !!s.error);
    if (indexing) {
      line.textContent = s.files_total ? `Indexing ${s.files_done} of ${plural(s.files_total, 'file')}…` : 'Indexing…';
    } else if (s.error) {
      line.textContent = `Indexing failed: ${s.error} Retried on the next change.`;
    }
    line.title = indexing && s.file ? s.file : '';
    line.hidden = !indexing && !s.error;
    if (counts && s.counts && String(s.runs) !== runs) {  // a run ended: what the index holds now
      const c = s.counts;
      counts.textContent = `${plural(c.videos, 'video')} · ${plural(c.images, 'photo')} · ${c.frames} frames`;
    }
    runs = String(s.runs);
  }

  async function poll() {
    if (!document.hidden) {
      try {
        const r = await fetch(line.dataset.status, { headers: { Accept: 'application/json' } });
        if (r.ok) show(await r.json());
      } catch (e) { /* the server restarting: try again later */ }
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
