// Image search: submit as soon as a file is chosen or dropped (anywhere on the page).
(() => {
  const form = document.querySelector('form.image-search');
  const textForm = document.querySelector('form.text-search');
  if (!form || !textForm) return;
  document.documentElement.classList.add('js');
  const input = form.querySelector('input[type=file]');
  const drop = form.querySelector('.drop');
  const label = drop.querySelector('.drop-text');

  function submit(files) {
    if (!files.length) return;
    if (input.files !== files) input.files = files;
    // k and the minimum score are edited in the text form; the image search uses them too.
    for (const name of ['k', 'min_score']) form.elements[name].value = textForm.elements[name].value;
    drop.classList.add('busy');
    label.textContent = 'Searching for frames like ' + files[0].name + '…';
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
