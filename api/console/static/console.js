// Tongban console: checks before upload, upload progress, the pinned log
// key and the in-browser verdict on a packet's bundle. No inline script
// anywhere: the page's data comes in data- attributes.
(function () {
  'use strict';
  var KEY = 'tongban.logkey';
  var SM2KEY = 'tongban.sm2key'; // gm profile: the log's SM2 key, pinned beside the log key
  function $(sel, root) { return (root || document).querySelector(sel); }
  function text(el, s) { el.textContent = s; }
  function li(ul, s) { var e = document.createElement('li'); e.textContent = s; ul.appendChild(e); return e; }

  var extTypes = { pdf: 'application/pdf', ofd: 'application/ofd', jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png' };
  function typeOf(f) {
    var ext = (f.name.split('.').pop() || '').toLowerCase();
    return extTypes[ext] || f.type || '';
  }
  function showProblems(box, list) {
    var ul = $('ul', box) || box.appendChild(document.createElement('ul'));
    ul.textContent = '';
    list.forEach(function (p) { li(ul, p); });
    box.hidden = list.length === 0;
  }
  function mib(n) { return (n / 1048576).toFixed(1) + ' MiB'; }

  // upload sends fd with progress, then follows the answer's "next", or
  // lists every problem the server reported.
  function upload(url, fd, bar, label, box, buttons) {
    var xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Accept', 'application/json');
    if (bar) { bar.hidden = false; bar.value = 0; }
    if (bar && bar.parentElement && bar.parentElement.id === 'progress-box') bar.parentElement.hidden = false;
    buttons.forEach(function (b) { b.disabled = true; });
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable || !bar) return;
      bar.value = Math.round(100 * e.loaded / e.total);
      if (label) text(label, bar.value + '% (' + mib(e.loaded) + ' / ' + mib(e.total) + ')');
    };
    xhr.onload = function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = { error: { message: xhr.responseText || xhr.statusText } }; }
      if (xhr.status >= 200 && xhr.status < 300 && body.next) { window.location.assign(body.next); return; }
      buttons.forEach(function (b) { b.disabled = false; });
      var err = body.error || {}, list = [err.message || ('HTTP ' + xhr.status)];
      Object.keys(err.fields || {}).sort().forEach(function (k) { list.push(k + ': ' + err.fields[k]); });
      showProblems(box, list);
    };
    xhr.onerror = function () {
      buttons.forEach(function (b) { b.disabled = false; });
      showProblems(box, ['network error']);
    };
    xhr.send(fd);
  }

  // The submission form: every problem at once, before any byte is sent.
  var form = $('#submit-form');
  if (form) {
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var box = $('#problems'), d = box.dataset, problems = [], files = [];
      [['#applicant_name', 'applicant_name'], ['#applicant_id', 'applicant_id']].forEach(function (f) {
        var el = $(f[0]);
        if (!el.value.trim()) problems.push(d.field + ': ' + (el.parentElement.firstChild.textContent || f[1]).trim());
      });
      form.querySelectorAll('input[type=file]').forEach(function (inp) {
        var f = inp.files[0], lbl = inp.dataset.label;
        if (!f) { if (inp.dataset.required) problems.push(d.missing + ': ' + lbl); return; }
        if (f.size === 0) problems.push(d.empty + ': ' + lbl + ' (' + f.name + ')');
        if (f.size > Number(inp.dataset.max)) problems.push(d.tooBig + ': ' + lbl + ' (' + f.name + ', ' + mib(f.size) + ' > ' + mib(Number(inp.dataset.max)) + ')');
        if (inp.dataset.types.split(',').indexOf(typeOf(f)) < 0) problems.push(d.badType + ': ' + lbl + ' (' + f.name + '; ' + inp.dataset.types + ')');
        files.push({ kind: inp.dataset.kind, file: f });
      });
      showProblems(box, problems);
      if (problems.length) return;
      var manifest = {
        item: form.dataset.item, destination: $('#destination').value,
        applicant: { type: $('#applicant_type').value, name: $('#applicant_name').value, id: $('#applicant_id').value },
        materials: files.map(function (m) { return { kind: m.kind, filename: m.file.name }; })
      };
      var fd = new FormData();
      fd.append('csrf', form.elements.csrf.value); // first: the server checks it before reading on
      fd.append('manifest', JSON.stringify(manifest));
      files.forEach(function (m) { fd.append(m.kind, m.file, m.file.name); });
      upload(form.action, fd, $('#progress'), $('#progress-text'), box, [$('#upload')]);
    });
  }

  // Supplement and licence forms: only the chosen files, with progress.
  document.querySelectorAll('form.upload').forEach(function (f) {
    f.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var fd = new FormData();
      fd.append('csrf', f.elements.csrf.value);
      f.querySelectorAll('input[type=file]').forEach(function (inp) {
        if (inp.files[0]) fd.append(inp.name, inp.files[0], inp.files[0].name);
      });
      upload(f.action, fd, $('progress', f), null, $('#action-error'), [$('button', f)]);
    });
  });

  // Full verification with progress: the server streams NDJSON lines.
  var vform = $('#verify-form');
  if (vform && window.fetch && window.TextDecoder) {
    vform.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var bar = $('#verify-progress'), label = $('#verify-progress-text'), buf = '';
      $('#verify-progress-box').hidden = false;
      $('button', vform).disabled = true;
      fetch(vform.action, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'Accept': 'application/x-ndjson', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(new FormData(vform))
      }).then(function (resp) {
        var reader = resp.body.getReader(), dec = new TextDecoder();
        function line(l) {
          if (!l) return;
          var m = JSON.parse(l);
          if (m.next) { window.location.assign(m.next); return; }
          if (m.error) { text(label, m.error.message); return; }
          bar.value = Math.round(100 * m.done / Math.max(m.total, 1));
          text(label, m.stage + ' ' + m.done + ' / ' + m.total);
        }
        function pump() {
          return reader.read().then(function (r) {
            buf += dec.decode(r.value || new Uint8Array(), { stream: !r.done });
            var lines = buf.split('\n');
            buf = lines.pop();
            lines.forEach(line);
            if (r.done) { line(buf); return; }
            return pump();
          });
        }
        return pump();
      }).catch(function (e) { text(label, String(e)); });
    });
  }

  // The log key, pinned once in this browser.
  var pinBox = $('#pin-box');
  if (pinBox) {
    var show = function () { text($('#pinned'), localStorage.getItem(KEY) || '—'); };
    show();
    $('#pin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var k = $('#pin-input').value.trim();
      if (k) localStorage.setItem(KEY, k);
      show();
    });
    $('#pin-tofu').addEventListener('click', function () { localStorage.setItem(KEY, pinBox.dataset.gatewayKey); show(); });
    $('#unpin').addEventListener('click', function () { localStorage.removeItem(KEY); show(); });
  }
  // The log's SM2 key (gm profile), pinned the same way; once pinned, a
  // bundle must carry a valid SM2 signature by it. The gateway does not
  // publish it: it comes from the operator, out of band.
  var sm2Box = $('#sm2-pin-box');
  if (sm2Box) {
    var show2 = function () { text($('#sm2-pinned'), localStorage.getItem(SM2KEY) || '—'); };
    show2();
    $('#sm2-pin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var k = $('#sm2-pin-input').value.trim();
      if (k) localStorage.setItem(SM2KEY, k);
      show2();
    });
    $('#sm2-unpin').addEventListener('click', function () { localStorage.removeItem(SM2KEY); show2(); });
  }

  // The verdict: the bundle is checked here, by the offline verifier
  // compiled to WebAssembly, against the pinned key only.
  var verdict = $('#verdict');
  if (verdict) verify(verdict);

  function setVerdict(el, kind, headline, lines) {
    el.dataset.verdict = kind;
    el.className = 'verdict ' + (kind === 'INTACT' ? 'ok' : 'bad');
    text(el, headline);
    var ul = $('#verdict-checks');
    ul.textContent = '';
    lines.forEach(function (l) { li(ul, l); });
  }

  function verify(el) {
    var d = el.dataset, key = localStorage.getItem(KEY);
    if (!key) { setVerdict(el, 'UNVERIFIABLE', d.unverifiable + ': ' + d.nopin, []); return; }
    var go = new Go();
    var ready = WebAssembly.instantiateStreaming(fetch('/console/static/verifier.wasm'), go.importObject)
      .then(function (r) { go.run(r.instance); });
    var bundle = fetch(d.bundle, { credentials: 'same-origin', headers: { Accept: 'application/zip' } });
    Promise.all([ready, bundle]).then(function (x) {
      var resp = x[1];
      if (!resp.ok) {
        return resp.json().then(function (b) {
          var err = b.error || {};
          if (err.code === 'integrity_violation') {
            setVerdict(el, 'ALTERED', d.altered + ': ' + (b.file || '?'), [(b.file || '') + ': ' + err.message]);
          } else {
            setVerdict(el, 'UNVERIFIABLE', d.unverifiable + ': ' + (err.message || resp.status), []);
          }
        });
      }
      return resp.arrayBuffer().then(function (buf) {
        var rep = JSON.parse(window.tongbanVerify(new Uint8Array(buf), key, localStorage.getItem(SM2KEY) || ''));
        if (rep.error) { setVerdict(el, 'UNVERIFIABLE', d.unverifiable + ': ' + rep.error, []); return; }
        var bad = rep.checks.filter(function (c) { return !c.ok; });
        if (bad.some(function (c) { return c.target === 'signature'; })) {
          setVerdict(el, 'UNVERIFIABLE', d.unverifiable + ': ' + bad[0].detail, []);
          return;
        }
        if (rep.ok && rep.packet !== d.packet) {
          setVerdict(el, 'ALTERED', d.altered + ': bundle of packet ' + rep.packet, []);
          return;
        }
        if (!rep.ok) {
          setVerdict(el, 'ALTERED', d.altered + ': ' + bad.map(function (c) { return c.target; }).join(', '),
            bad.map(function (c) { return c.target + ': ' + c.detail; }));
          return;
        }
        setVerdict(el, 'INTACT', d.intact + ' · ' + rep.packet + ' · checkpoint ' + rep.checkpoint.Size,
          [d.covered + ':'].concat(rep.checks.map(function (c) { return c.target + ': ' + c.detail; })));
      });
    }).catch(function (e) { setVerdict(el, 'UNVERIFIABLE', d.unverifiable + ': ' + e, []); });
  }
})();
