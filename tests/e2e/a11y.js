// 适老化 checks evaluated in the kiosk page: body text size, touch target
// sizes and the contrast of text against its card (WCAG formula).
() => {
        const lum = (c) => { const [r, g, b] = c.match(/\d+/g).slice(0, 3).map((v) => {
            v = v / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
            return (x + 0.05) / (y + 0.05); };
        const targets = [...document.querySelectorAll("a, button, input, select, textarea")]
            .filter((e) => e.offsetParent !== null && e.type !== "radio" && e.type !== "hidden");
        const small = targets.filter((e) => { const r = e.getBoundingClientRect();
            return r.width < 60 || r.height < 60; }).map((e) => e.outerHTML.slice(0, 60));
        const body = getComputedStyle(document.querySelector("main label"));
        const card = getComputedStyle(document.querySelector(".card"));
        return { font: parseFloat(body.fontSize), small,
                 contrast: ratio(body.color, card.backgroundColor) };
    }
