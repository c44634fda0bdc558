package console

import (
	"encoding/json"
	"net/http"

	"github.com/soarkafka/soarkafka"
)

// assetHistory answers the asset detail's chart with the asset's last
// polls and per-minute series, as JSON: the CSP allows no inline script,
// so static/assethistory.js fetches the figures it draws. The same figures
// are on the page as a table for those who do not see the chart.
func (c *Console) assetHistory(w http.ResponseWriter, r *http.Request, _ *session) {
	name := r.PathValue("name")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	fail := func(status int, msg string) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	if _, _, err := c.opts.Assets.Resolve(r.Context(), name); soarkafka.ErrorCode(err) == soarkafka.ENOTFOUND {
		fail(http.StatusNotFound, soarkafka.ErrorMessage(err))
		return
	}
	if c.opts.Ingest == nil {
		fail(http.StatusServiceUnavailable, "poll history not available: this server runs no polls")
		return
	}
	h, err := c.opts.Ingest.History(r.Context(), name)
	if err != nil {
		c.opts.Logger.Error("console: poll history", "asset", name, "err", err)
		fail(http.StatusInternalServerError, "poll history: "+soarkafka.ErrorMessage(err))
		return
	}
	_ = json.NewEncoder(w).Encode(h)
}
