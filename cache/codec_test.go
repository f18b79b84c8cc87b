package cache

import (
	"testing"
	"time"

	"github.com/attrcache/attrcache"
)

// encodeAttr writes exactly what encoding/json writes for an attribute's metadata, and
// decodeAttr reads it back, and reads what encoding/json writes in another shape too.
func TestAttrCodecMatchesEncodingJSON(t *testing.T) {
	scope := attrcache.AttrScope{UserID: attrcache.NewUserID()}
	plus2 := time.FixedZone("plus2", 2*3600)
	base := time.Date(2026, 11, 23, 21, 0, 0, 0, time.UTC)
	times := []time.Time{
		base,
		base.Add(123456 * time.Microsecond),
		base.Add(time.Nanosecond),
		base.In(plus2),
		attrcache.NeverExpires,
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, ct := range times {
		for _, encrypted := range []bool{false, true} {
			a := &attrcache.Attr{Scope: scope, Name: "n", Value: `{"x":[1,"\n"]}`, IsEncrypted: encrypted,
				CreationTime: ct, LastModified: times[(i+1)%len(times)], ExpirationTime: times[(i+2)%len(times)],
				Version: int64(1000 + i)}
			got, err := encodeAttr(a)
			if err != nil {
				t.Fatal(err)
			}
			meta, err := encodeValue(a.Version, cachedAttrMeta{IsEncrypted: a.IsEncrypted,
				CreationTime: a.CreationTime, LastModified: a.LastModified, ExpirationTime: a.ExpirationTime})
			if err != nil {
				t.Fatal(err)
			}
			if want := meta + attrValueSep + a.Value; got != want {
				t.Fatalf("encodeAttr:\n got %q\nwant %q", got, want)
			}
			e, err := parseEntry(got)
			if err != nil {
				t.Fatal(err)
			}
			back, err := decodeAttr(scope, a.Name, e)
			if err != nil {
				t.Fatal(err)
			}
			if back.Value != a.Value || back.IsEncrypted != a.IsEncrypted || back.Version != a.Version ||
				!back.CreationTime.Equal(a.CreationTime) || !back.LastModified.Equal(a.LastModified) ||
				!back.ExpirationTime.Equal(a.ExpirationTime) {
				t.Fatalf("decodeAttr(encodeAttr(%+v)) = %+v", a, back)
			}
		}
	}

	// Another shape of the same JSON (keys reordered, spaces) still decodes.
	e, err := parseEntry("v7:" + `{ "et":"2026-11-23T21:00:00Z", "ct":"2026-11-23T20:00:00Z","lm":"2026-11-23T20:30:00Z","enc":true}` + attrValueSep + "1")
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeAttr(scope, "n", e)
	if err != nil || !back.IsEncrypted || !back.ExpirationTime.Equal(base) || back.Value != "1" {
		t.Fatalf("decodeAttr of reordered JSON = %+v, %v", back, err)
	}
	// A year encoding/json refuses is refused as it refuses it.
	if _, err := encodeAttr(&attrcache.Attr{CreationTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("encodeAttr accepted a year above 9999")
	}
}
