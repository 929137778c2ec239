// scopegate consent page: progressive enhancement of the scope checkboxes.
// The form works without this script. With it:
//  - ticking or unticking a scope ticks or unticks all its descendants;
//  - a parent whose descendants are partly ticked is shown "indeterminate" (and stays ticked, so
//    the server grants the ticked descendants individually);
//  - a parent whose descendants are all unticked is unticked too, and one whose descendants are
//    all ticked again is ticked again.
// The tree comes from the data attributes on the list items: data-node (the scope name) and
// data-node-parent (its parent's name). Rows without a checkbox ("Included") are transparent:
// their descendants count for the nearest ancestor that has a checkbox.
"use strict";

(() => {
  function buildTree(form) {
    const nodes = new Map();
    const order = [];
    for (const item of form.querySelectorAll("li[data-node]")) {
      const node = {
        name: item.dataset.node,
        parent: item.dataset.nodeParent || null,
        box: item.querySelector('input[type="checkbox"][data-scope]'),
        children: [],
      };
      if (nodes.has(node.name)) {
        continue;
      }
      nodes.set(node.name, node);
      order.push(node);
    }
    for (const node of order) {
      const parent = node.parent === null ? undefined : nodes.get(node.parent);
      if (parent && parent !== node) {
        parent.children.push(node);
      }
    }
    return { nodes, order };
  }

  // The nearest descendants that have a checkbox.
  function checkableChildren(node, seen = new Set()) {
    const out = [];
    for (const child of node.children) {
      if (seen.has(child)) {
        continue;
      }
      seen.add(child);
      if (child.box) {
        out.push(child);
      } else {
        out.push(...checkableChildren(child, seen));
      }
    }
    return out;
  }

  function descendants(node, seen = new Set()) {
    const out = [];
    for (const child of node.children) {
      if (seen.has(child)) {
        continue;
      }
      seen.add(child);
      out.push(child, ...descendants(child, seen));
    }
    return out;
  }

  // Recompute every parent from its children, deepest first (the rows are in pre-order, so the
  // reverse order visits children before their parents).
  function syncParents(order) {
    for (let i = order.length - 1; i >= 0; i -= 1) {
      const node = order[i];
      if (!node.box) {
        continue;
      }
      const kids = checkableChildren(node);
      if (kids.length === 0) {
        node.box.indeterminate = false;
        continue;
      }
      const allOn = kids.every((kid) => kid.box.checked && !kid.box.indeterminate);
      const allOff = kids.every((kid) => !kid.box.checked);
      if (allOn) {
        node.box.checked = true;
        node.box.indeterminate = false;
      } else if (allOff) {
        node.box.checked = false;
        node.box.indeterminate = false;
      } else {
        node.box.checked = true;
        node.box.indeterminate = true;
      }
    }
  }

  function enhance(form) {
    const { nodes, order } = buildTree(form);
    if (order.length === 0) {
      return;
    }
    form.addEventListener("change", (event) => {
      const box = event.target;
      if (!(box instanceof HTMLInputElement) || box.type !== "checkbox" || !box.dataset.scope) {
        return;
      }
      const node = nodes.get(box.dataset.scope);
      if (!node) {
        return;
      }
      box.indeterminate = false;
      for (const below of descendants(node)) {
        if (below.box) {
          below.box.checked = box.checked;
          below.box.indeterminate = false;
        }
      }
      syncParents(order);
    });
    syncParents(order);
    // Browsers restore checkbox states when the page comes back from the history.
    window.addEventListener("pageshow", () => syncParents(order));
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const form of document.querySelectorAll("form.consent-form")) {
      enhance(form);
    }
  });
})();
