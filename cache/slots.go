package cache

import "strings"

// numSlots is how many hash slots Redis Cluster spreads keys over.
const numSlots = 16384

// crc16Table is the table of CRC-16/XMODEM, the checksum Redis Cluster maps keys to slots with.
var crc16Table = func() (table [256]uint16) {
	for i := range table {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		table[i] = crc
	}
	return table
}()

// slotOf returns the Redis Cluster hash slot of key: that of its hash tag (what the first '{'
// and the next '}' enclose) when the tag is not empty, else that of the whole key.
func slotOf(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if length := strings.IndexByte(key[open+1:], '}'); length > 0 {
			key = key[open+1 : open+1+length]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^key[i]]
	}
	return int(crc) % numSlots
}

// slotSet is a set of hash slots.
type slotSet [numSlots / 64]uint64

func (ss *slotSet) add(slot int)           { ss[slot/64] |= 1 << (slot % 64) }
func (ss *slotSet) contains(slot int) bool { return ss[slot/64]&(1<<(slot%64)) != 0 }

// addAll adds every slot of other.
func (ss *slotSet) addAll(other *slotSet) {
	for i := range ss {
		ss[i] |= other[i]
	}
}

// len returns how many slots ss holds.
func (ss *slotSet) len() int {
	n := 0
	for _, word := range ss {
		for ; word != 0; word &= word - 1 {
			n++
		}
	}
	return n
}

// allSlots returns the set of every slot: all of a single server's keys.
func allSlots() *slotSet {
	var ss slotSet
	for i := range ss {
		ss[i] = ^uint64(0)
	}
	return &ss
}
