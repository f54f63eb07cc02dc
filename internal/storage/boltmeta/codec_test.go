package boltmeta

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"nfyio.dev/storage/internal/storage"
)

func sampleObject() storage.Object {
	return storage.Object{
		Bucket: "photos", Key: "2024/holiday/IMG_0001.jpg", Size: 15 << 20,
		ETag: "9b2cf535f27731c974343645a3985328-3", LastModified: time.Unix(1717171717, 123456789).UTC(),
		ContentType: "image/jpeg", CacheControl: "max-age=3600",
		UserMeta: map[string]string{"camera": "x100", "owner": "user-42"},
		Checksum: &storage.Checksum{Algorithm: "CRC32C", Value: "yZRlqg==-3", Type: "COMPOSITE"},
		Parts: []storage.PartInfo{
			{Number: 1, Size: 5 << 20, ETag: "0cc175b9c0f1b6a831c399e269772661", Checksum: "AAAAAA=="},
			{Number: 2, Size: 5 << 20, ETag: "92eb5ffee6ae2fec3ad71c777531578f", Checksum: "AAAAAA=="},
			{Number: 3, Size: 5 << 20, ETag: "4a8a08f09d37b73795649038408b5f33", Checksum: "AAAAAA=="},
		},
		Segments: []storage.Segment{
			{Blob: "3f2a9c0d4b5e6f708192a3b4c5d6e7f8", Size: 5 << 20},
			{Blob: "4f2a9c0d4b5e6f708192a3b4c5d6e7f8", Size: 5 << 20},
			{Blob: "5f2a9c0d4b5e6f708192a3b4c5d6e7f8", Size: 5 << 20},
		},
	}
}

func TestObjectCodecRoundTrip(t *testing.T) {
	for _, o := range []storage.Object{
		sampleObject(),
		{Bucket: "b", Key: "k"}, // zero everything, including the zero time
		{Bucket: "b", Key: "k", Size: -1, Inline: []byte{}, LastModified: time.Unix(-5, 7).UTC()},
		{Bucket: "b", Key: "k", Inline: []byte("small"), UserMeta: map[string]string{"": ""}},
	} {
		got, err := decodeObject(o.Bucket, []byte(o.Key), appendObject(nil, &o))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !got.LastModified.Equal(o.LastModified) || got.LastModified.IsZero() != o.LastModified.IsZero() {
			t.Errorf("time %v became %v", o.LastModified, got.LastModified)
		}
		got.LastModified, o.LastModified = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, o) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got, o)
		}
	}
}

func TestCodecRejectsCorruptRecords(t *testing.T) {
	o := sampleObject()
	rec := appendObject(nil, &o)
	// Every truncation fails cleanly instead of panicking or inventing data.
	for n := range len(rec) {
		if _, err := decodeObject("b", []byte("k"), rec[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("record cut at %d of %d bytes: %v, want errCorrupt", n, len(rec), err)
		}
	}
	future := append([]byte{objectV1 + 1}, rec[1:]...)
	if _, err := decodeObject("b", []byte("k"), future); !errors.Is(err, errCorrupt) {
		t.Errorf("record of a future version: %v, want an error", err)
	}
	p := storage.Part{Number: 3, Size: 9, ETag: "e", Segment: storage.Segment{Blob: "r", Size: 9}}
	prec := appendPart(nil, &p)
	for n := range len(prec) {
		if _, err := decodePart(prec[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("part record cut at %d: %v", n, err)
		}
	}
}

func FuzzDecodeObject(f *testing.F) {
	o := sampleObject()
	f.Add(appendObject(nil, &o))
	f.Add([]byte{objectV1})
	f.Fuzz(func(t *testing.T, rec []byte) {
		got, err := decodeObject("b", []byte("k"), rec)
		if err != nil {
			return
		}
		// Whatever decodes, encodes back to a record that decodes the same.
		again, err := decodeObject("b", []byte("k"), appendObject(nil, &got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("re-encoded record differs: %v\n%#v\n%#v", err, again, got)
		}
	})
}

// BenchmarkCodec compares the binary record encoding with encoding/json,
// the alternative for v1 (gob is slower than both for single records).
func BenchmarkCodec(b *testing.B) {
	o := sampleObject()
	b.Run("binary/encode", func(b *testing.B) {
		buf := appendObject(nil, &o)
		for b.Loop() {
			buf = appendObject(buf[:0], &o)
		}
		b.ReportMetric(float64(len(buf)), "bytes/record")
	})
	b.Run("binary/decode", func(b *testing.B) {
		rec := appendObject(nil, &o)
		for b.Loop() {
			if _, err := decodeObject(o.Bucket, []byte(o.Key), rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json/encode", func(b *testing.B) {
		var rec []byte
		for b.Loop() {
			var err error
			if rec, err = json.Marshal(o); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(rec)), "bytes/record")
	})
	b.Run("json/decode", func(b *testing.B) {
		rec, _ := json.Marshal(o)
		for b.Loop() {
			var got storage.Object
			if err := json.Unmarshal(rec, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
