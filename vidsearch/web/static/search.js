// The search page: text searches leave default settings out of the URL (short bookmarks); an image search submits
// as soon as a file is chosen or dropped (anywhere on the page), with the text form's fields.
(() => {
  const form = document.querySelector('form.image-search');
  const textForm = document.querySelector('form.text-search');
  if (!form || !textForm) return;
  document.documentElement.classList.add('js');
  const input = form.querySelector('input[type=file]');
  const drop = form.querySelector('.drop');
  const label = drop.querySelector('.drop-text');

  // The text form's values that differ from the defaults.
  function fields() {
    return [...new FormData(textForm)].filter(([name, value]) => {
      const el = textForm.elements[name];
      return value.trim() !== '' && !(el instanceof HTMLInputElement && el.dataset.default === value);
    });
  }

  textForm.addEventListener('submit', ev => {
    ev.preventDefault();
    const params = new URLSearchParams(fields()).toString();
    location.assign(textForm.action.split('?')[0] + (params ? '?' + params : ''));
  });

  function submit(files) {
    if (!files.length) return;
    if (input.files !== files) input.files = files;
    form.querySelectorAll('input[type=hidden]').forEach(el => el.remove());
    for (const [name, value] of fields()) {
      if (name === 'qimg') continue;  // the new image replaces the one searched with
      const hidden = Object.assign(document.createElement('input'), { type: 'hidden', name, value });
      form.append(hidden);
    }
    drop.classList.add('busy');
    label.textContent = 'Searching for moments like ' + files[0].name + '…';
    form.submit();
  }

  input.addEventListener('change', () => submit(input.files));
  let depth = 0;  // dragenter/dragleave fire for every child element crossed
  window.addEventListener('dragenter', ev => { ev.preventDefault(); depth++; drop.classList.add('over'); });
  window.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; drop.classList.remove('over'); } });
  window.addEventListener('dragover', ev => ev.preventDefault());  // else the browser opens the dropped file
  window.addEventListener('drop', ev => {
    ev.preventDefault();
    depth = 0;
    drop.classList.remove('over');
    if (ev.dataTransfer) submit(ev.dataTransfer.files);
  });
})();
