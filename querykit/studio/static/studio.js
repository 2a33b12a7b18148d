// querykit studio: the few behaviours htmx does not cover. No dependencies.
document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const text = copy.parentElement.querySelector("pre.inline").textContent;
    navigator.clipboard.writeText(text).then(() => {
      copy.textContent = "copied";
      setTimeout(() => { copy.textContent = "copy inline"; }, 1500);
    });
  }
  if (event.target.closest("[data-panel]")) {
    const panel = document.getElementById("panel");
    panel.hidden = false;
    panel.innerHTML = '<p class="hint">loading…</p>';
  }
  if (event.target.closest("[data-close]")) {
    const panel = document.getElementById("panel");
    panel.hidden = true;
    panel.innerHTML = "";
  }
});

// Filters: send only the fields filled in, so the view's URL stays short and readable.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches(".filter-form")) return;
  for (const field of form.querySelectorAll("input, select")) {
    if (field.value === "") field.disabled = true;
  }
});
